"""Ollama model names as Ollama 0.17.4 parses them (types/model/name.go, ParseName).

    [host/][namespace/]model[:tag]   defaults registry.ollama.ai, library, latest

Each part: a letter, digit or '_' first, then letters, digits, '_' and '-'; the model and tag may
also hold '.', the host '.' and ':' (a port). At most 80 characters a part, 350 for the host.
A '/' or ':' anywhere else makes the name invalid, and so does '@': in this release the digest
form `name@sha256:...` is not parsed at all (ParseNameBare cuts no '@'), so a name with '@'
never resolves. The tag is what follows the last ':' when that ':' comes after the last '/'.

A `scheme://` prefix is parsed too (0.17 keeps it: http for a plain-HTTP registry); llmstage never
takes one in a name, since spec.ollama.registry.insecure says `ollama pull --insecure`, which falls
back to http for the registry's host.

Names are case-insensitive when Ollama looks a model up (Name.EqualFold), and a model's
manifest lives at OLLAMA_MODELS/manifests/HOST/NAMESPACE/MODEL/TAG (Name.Filepath).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
_MISSING = "!MISSING!"  # what ParseNameBare puts where a separator promised a part

_HOST = r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}"
_NAMESPACE = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}"
_MODEL = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"
# A name without a scheme that ParseName accepts. The same expression is the CRD's CEL rule for
# spec.servedModelName on Ollama, so the API server and resolve() agree.
NAME_PATTERN = rf"^(({_HOST}/)?{_NAMESPACE}/)?{_MODEL}(:{_MODEL})?$"
NAMESPACE_PATTERN = rf"^{_NAMESPACE}$"
HOST_PATTERN = rf"^{_HOST}$"
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Name:
    host: str
    namespace: str
    model: str
    tag: str

    def __str__(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def filepath(self) -> str:
        """Where the manifest lives under OLLAMA_MODELS/manifests (Name.Filepath)."""
        return f"{self.host}/{self.namespace}/{self.model}/{self.tag}"

    def same(self, other: Name) -> bool:
        return str(self).lower() == str(other).lower()


def _cut_promised(s: str, sep: str) -> tuple[str, str, bool]:
    i = s.rfind(sep)
    if i < 0:
        return s, "", False
    return s[:i] or _MISSING, s[i + len(sep) :] or _MISSING, True


def parse_bare(s: str) -> tuple[str, str, str, str]:
    """ParseNameBare: (host, namespace, model, tag), '' for parts the string does not have."""
    host = namespace = tag = ""
    if s.rfind(":") > s.rfind("/"):
        s, tag, _ = _cut_promised(s, ":")
    s, model, promised = _cut_promised(s, "/")
    if not promised:
        return host, namespace, s, tag
    s, namespace, promised = _cut_promised(s, "/")
    if not promised:
        return host, s, model, tag
    scheme, sep, rest = s.partition("://")
    return (rest if sep else scheme), namespace, model, tag


def parse(s: str) -> Name:
    """ParseName: the bare parts merged with the defaults. Check is_valid first."""
    host, namespace, model, tag = parse_bare(s)
    return Name(host or DEFAULT_HOST, namespace or DEFAULT_NAMESPACE, model, tag or DEFAULT_TAG)


def is_valid(s: str) -> bool:
    """Whether Ollama accepts `s` as a model name (scheme-less form: NAME_PATTERN)."""
    return bool(_NAME.match(s))


def has_host(s: str) -> bool:
    return bool(parse_bare(s)[0])


def has_namespace(s: str) -> bool:
    return bool(parse_bare(s)[1])
