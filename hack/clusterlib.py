"""Helpers shared by hack/cluster.py (control plane, kwok) and hack/realnode/ (the real node).

Standard library only: these run before the virtualenv exists.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".tools" / "bin"
STATE = Path(os.environ.get("LLMSTAGE_CLUSTER_DIR", REPO / ".cluster"))
PKI, LOGS, PIDS = STATE / "pki", STATE / "logs", STATE / "pids"
KUBECONFIG = STATE / "kubeconfig"
HERE = Path(__file__).resolve().parent / "cluster"


def log(msg: str) -> None:
    print(f">> {msg}", flush=True)


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(args, capture_output=True, text=True, input=stdin)
    if check and res.returncode != 0:
        fail(f"{' '.join(args[:3])}... failed ({res.returncode}): {res.stderr.strip() or res.stdout.strip()}")
    return res


def kubectl(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN / "kubectl"), "--kubeconfig", str(KUBECONFIG), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, input=stdin)
    if check and res.returncode != 0:
        fail(f"kubectl {' '.join(args)} failed: {res.stderr.strip()}")
    return res


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    fail(f"timed out after {timeout:.0f}s waiting for {what} (logs in {LOGS})")


# ---------------------------------------------------------------- processes with pid files


def pid_of(name: str) -> int | None:
    f = PIDS / f"{name}.pid"
    if not f.exists():
        return None
    try:
        pid = int(f.read_text())
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return None
    # A recycled pid would be some other program: check it is still ours.
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    return (
        pid
        if argv[0].endswith(name) or any(a.endswith((f"bin/{name}", f"hack/{name}")) for a in argv)
        else None
    )


def start_process(name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
    """Start `argv` in its own session, logging to .cluster/logs/NAME.log, unless it runs."""
    if pid_of(name):
        return
    if not Path(argv[0]).exists():
        fail(f"{argv[0]} is missing: run `make tools` first")
    LOGS.mkdir(parents=True, exist_ok=True)
    PIDS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"{name}.log", "ab") as out:  # the child keeps its own copy of the fd
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=STATE,
            env={**os.environ, **env} if env else None,
        )
    (PIDS / f"{name}.pid").write_text(str(proc.pid))


def stop_process(name: str, grace: float = 15) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds; forget its pid file."""
    pid = pid_of(name)
    if pid:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while pid_of(name) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_of(name):
            os.killpg(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while pid_of(name) and time.monotonic() < deadline:
                time.sleep(0.1)
    (PIDS / f"{name}.pid").unlink(missing_ok=True)
