"""The `llmstage` command line. Each subcommand lives in its own module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from llmstage import __version__

# Subcommand modules, each exposing register(subparsers) which sets `func` on its parser.
COMMANDS: list[str] = [
    "run",
    "crd",
    "render",
    "recommend",
    "promote",
    "pipeline",
    "status",
    "benchmark",
    "manifests",
    "catalog",
]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmstage",
        description="Serve LLMs on Kubernetes: Ollama in dev and staging, GPU-scheduled vLLM in production.",
    )
    parser.add_argument("--version", action="version", version=f"llmstage {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    import importlib

    for name in COMMANDS:
        importlib.import_module(f"llmstage.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
