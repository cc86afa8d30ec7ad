"""What every CLI command shares: one-line errors with exit codes, reading files, option types, tables.

Exit codes: 0 success, 1 failure (the cluster, the file system), 2 bad usage or input (argparse
uses 2 as well). Errors are one line on stderr that names the file or field and the fix; no
command prints a traceback (LLMSTAGE_DEBUG=1 shows one for bug reports).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pydantic
import yaml

from llmstage.api.defaults import DefaultsError, ServingDefaults, parse_defaults
from llmstage.api.manifest import GPUChoice, Manifest, ManifestError, parse_llmservices
from llmstage.api.validation import validation_message
from llmstage.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from llmstage.gitops.promotion import PromotionRefused
from llmstage.kubeapi.errors import ApiError, ConfigError
from llmstage.resolve import SpecError

STDIN = "-"


class CliError(Exception):
    """A problem the user can fix, reported as one line: `llmstage CMD: error: MESSAGE`."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def parser_for(subparsers: Any, name: str, help_text: str, doc: str | None, examples: str) -> Any:
    """A subcommand parser whose --help ends with its examples, formatted as written."""
    return subparsers.add_parser(
        name,
        help=help_text,
        description=doc,
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# ---------------------------------------------------------------- error reporting


def _api_message(err: ApiError) -> str:
    """'the API server answered STATUS Reason: message', the message from its Status body."""
    return f"the API server answered {err.status} {err.reason}: {err.message}".strip()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:  # noqa: C901 - one clause per kind of error the CLI reports in one line
    """Run a command, turning every exception into one line on stderr and an exit code."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        name = f"llmstage {getattr(args, 'command', '') or ''}".strip()
        try:
            return func(args)
        except CliError as err:
            return _fail(name, err.message, err.code)
        except (SpecError, ManifestError, PromotionRefused, DefaultsError) as err:
            return _fail(name, str(err), EXIT_USAGE)
        except pydantic.ValidationError as err:
            return _fail(name, validation_message(err), EXIT_USAGE)
        except yaml.YAMLError as err:
            return _fail(name, f"YAML syntax error: {_one_line(str(err))}", EXIT_USAGE)
        except FileNotFoundError as err:
            return _fail(name, f"{err.filename}: no such file or directory", EXIT_USAGE)
        except BrokenPipeError:
            # The reader (e.g. `| head`) went away: not an error worth a message.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
            return EXIT_OK
        except OSError as err:
            where = f"{err.filename}: " if getattr(err, "filename", None) else ""
            return _fail(name, f"{where}{err.strerror or err}", EXIT_FAILURE)
        except KeyboardInterrupt:
            return 130
        except Exception as err:
            kube = _kubernetes_message(err)
            if kube is not None:
                return _fail(name, kube[0], kube[1])
            if os.environ.get("LLMSTAGE_DEBUG"):
                traceback.print_exc()
            return _fail(
                name,
                f"unexpected {type(err).__name__}: {_one_line(str(err))} "
                "(a bug in llmstage: please report it; LLMSTAGE_DEBUG=1 shows the traceback)",
                EXIT_FAILURE,
            )

    return run


def _kubernetes_message(err: Exception) -> tuple[str, int] | None:
    """Errors of the API client and its transport, as (message, exit code)."""
    import httpx

    if isinstance(err, ApiError):
        return _api_message(err), EXIT_FAILURE
    if isinstance(err, ConfigError):
        return f"{_one_line(str(err))}; pass --kubeconfig FILE or set KUBECONFIG", EXIT_USAGE
    if isinstance(err, httpx.TransportError):
        request = getattr(err, "_request", None)
        where = f" {request.url.scheme}://{request.url.netloc.decode()}" if request is not None else ""
        return (
            f"cannot reach the API server{where}: {_one_line(str(err) or type(err).__name__)}",
            EXIT_FAILURE,
        )
    return None


def _fail(name: str, message: str, code: int) -> int:
    print(f"{name}: error: {_one_line(message)}", file=sys.stderr)
    return code


def warn(message: str) -> None:
    """A warning on stderr, spelled like kubectl's ("Warning: ...")."""
    print(f"Warning: {_one_line(message)}", file=sys.stderr)


# ---------------------------------------------------------------- manifests


def read_text(path: str) -> str:
    """The file's text, or stdin for '-'. Missing files are bad input (exit 2), with the fix."""
    if path == STDIN:
        return sys.stdin.read()
    p = Path(path)
    if not p.exists():
        raise CliError(f"{path}: no such file; pass the path of an LLMService manifest with -f")
    if p.is_dir():
        raise CliError(f"{path}: is a directory; pass one manifest file with -f (or - for stdin)")
    return p.read_text(encoding="utf-8")


def display_name(path: str) -> str:
    return "<stdin>" if path == STDIN else path


def load_llmservices(path: str) -> list[Manifest]:
    """Every LLMService in a (multi-document) YAML file or stdin; other kinds are skipped."""
    return parse_llmservices(read_text(path), display_name(path))


def load_defaults(path: str | None) -> ServingDefaults | None:
    """The install's serving defaults from --defaults FILE (docs/install.md); None without one."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise CliError(f"--defaults {path}: no such file; pass the serving-defaults YAML file")
    return parse_defaults(p.read_text(encoding="utf-8"), path)


def add_defaults_option(parser: Any) -> None:
    parser.add_argument(
        "--defaults",
        metavar="FILE",
        help="the install's serving defaults (registry mirror, pull secrets, scheduling, labels, IDs, "
        "PodMonitor labels: the chart's servingDefaults), as the operator applies them",
    )


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=True)


# ---------------------------------------------------------------- -o yaml|json


def add_output_option(parser: Any, *formats: str) -> None:
    """-o/--output with the first format as the default (kubectl's spelling)."""
    parser.add_argument(
        "-o", "--output", choices=formats, default=formats[0], help=f"output format (default: {formats[0]})"
    )


def add_gpu_option(parser: Any, help: str) -> None:
    """--gpu PRODUCT[:COUNT], parsed by parse_gpu (recommend, pipeline init, promote)."""
    parser.add_argument("--gpu", type=parse_gpu, metavar="PRODUCT[:COUNT]", help=help)


def format_objects(
    objects: list[dict[str, Any]], output: str, header: str = "", as_list: bool = False
) -> str:
    """Kubernetes objects as YAML documents (a comment header allowed) or JSON: one object as
    itself, several (or any number, as_list) as a v1 List, as `kubectl get -o json` prints them."""
    if output == "json":
        single = len(objects) == 1 and not as_list
        doc = objects[0] if single else {"apiVersion": "v1", "kind": "List", "items": objects}
        return json.dumps(doc, indent=2) + "\n"
    if as_list:
        return dump_yaml({"apiVersion": "v1", "kind": "List", "items": objects})
    return header + "---\n".join(dump_yaml(obj) for obj in objects)


# ---------------------------------------------------------------- option values


_GPU = re.compile(r"^(?:(?P<product>[A-Za-z][A-Za-z0-9._-]*)(?::(?P<count>\d+))?|(?P<only>\d+))$")


def parse_gpu(value: str) -> GPUChoice:
    """argparse type for PRODUCT[:COUNT] or COUNT, e.g. NVIDIA-L4, NVIDIA-H100-80GB-HBM3:2, 0."""
    match = _GPU.match(value.strip())
    if not match:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not PRODUCT[:COUNT] or COUNT, e.g. NVIDIA-L4, NVIDIA-H100-80GB-HBM3:2 or 0"
        )
    if match.group("only") is not None:
        return GPUChoice(int(match.group("only")), None)
    count = int(match.group("count")) if match.group("count") is not None else None
    if count is not None and count < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: a GPU product needs a count of at least 1")
    return GPUChoice(count, match.group("product"))


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return number


# ---------------------------------------------------------------- tables


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded like kubectl's; a cell with newlines continues on the following lines."""
    split = [[cell.split("\n") for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in split:
        for i, lines in enumerate(row[:-1]):
            widths[i] = max(widths[i], *(len(line) for line in lines))

    def line(cells: Sequence[str]) -> str:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        return "   ".join([*padded, cells[-1]]).rstrip()

    out = [line(headers)]
    for row in split:
        height = max(len(lines) for lines in row)
        for n in range(height):
            out.append(line([lines[n] if n < len(lines) else "" for lines in row]))
    return "\n".join(out) + "\n"
