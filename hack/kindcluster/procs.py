"""Processes the kind cluster starts (the namespace holder, dockerd, the model registry), each with a
pid file in .kind/pids that records its start time, so a recycled pid is never taken for it, and
a log in .kind/logs. Standard library only."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from kindcluster.config import LOGS, PIDS, STATE


def log(msg: str) -> None:
    print(f">> {msg}", flush=True)


class Fail(Exception):
    pass


def run(*args: str | Path, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if check and res.returncode != 0:
        raise Fail(
            f"{' '.join(map(str, args[:4]))}... exited {res.returncode}: "
            f"{(res.stderr or res.stdout).strip()[-2000:]}"
        )
    return res  # type: ignore[no-any-return]


def wait_for(what: str, check: Callable[[], object], timeout: float, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise Fail(f"timed out after {timeout:.0f} s waiting for {what} (logs in {LOGS})")


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (/proc/PID/stat field 22), or None if it is gone
    (or a zombie: exited, not yet collected by its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def pid_of(name: str) -> int | None:
    f = PIDS / f"{name}.pid"
    try:
        rec = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    pid = int(rec["pid"])
    return pid if start_time(pid) == rec["start"] else None


def start(name: str, argv: Sequence[str | Path], env: dict[str, str] | None = None) -> int:
    """argv in its own session, output to .kind/logs/NAME.log; its pid (unless it runs already)."""
    running = pid_of(name)
    if running:
        return running
    LOGS.mkdir(parents=True, exist_ok=True)
    PIDS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"{name}.log", "ab") as out:
        proc = subprocess.Popen(
            [str(a) for a in argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=STATE,
            env={**os.environ, **env} if env else None,
        )
    (PIDS / f"{name}.pid").write_text(json.dumps({"pid": proc.pid, "start": start_time(proc.pid)}))
    return proc.pid


def stop(name: str, grace: float = 20, sig: int = signal.SIGTERM) -> None:
    """`sig` to the process group, SIGKILL after `grace` seconds; forget the pid file."""
    pid = pid_of(name)
    if pid:
        with_group(pid, sig)
        deadline = time.monotonic() + grace
        while pid_of(name) and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.1)
        if pid_of(name):
            with_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while pid_of(name) and time.monotonic() < deadline:
                reap(pid)
                time.sleep(0.1)
        if pid_of(name):
            raise Fail(f"{name} (pid {pid}) did not stop")
    (PIDS / f"{name}.pid").unlink(missing_ok=True)


def with_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def reap(pid: int) -> None:
    """Collect a child of this process that exited (else it stays a zombie with the same pid)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
