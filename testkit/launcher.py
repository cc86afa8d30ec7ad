"""`llmstage run` as a subprocess: the one launcher of the cluster tests and the benchmark.

Liveness is off and metrics listen on 127.0.0.1 only, on `metrics_port` (0: off); options in
`extra_args` come last, so they win. The log goes to `log_path` (appended), kept for asserts.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: Path,
        log_path: Path,
        *extra_args: str,
        metrics_port: int = 0,
        wrapper: list[str] | None = None,
        python_args: list[str] | None = None,
    ) -> None:
        self.kubeconfig, self.log_path, self.extra_args = kubeconfig, log_path, extra_args
        self.metrics_port = metrics_port
        self.wrapper, self.python_args = wrapper or [], python_args or []  # e.g. a profiler
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def command(self) -> list[str]:
        return [
            *self.wrapper,
            sys.executable,
            *self.python_args,
            "-m",
            "llmstage.cli",
            "run",
            "--kubeconfig",
            str(self.kubeconfig),
            "--liveness",
            "off",
            "--metrics-port",
            str(self.metrics_port),
            "--metrics-address",
            "127.0.0.1",
            *self.extra_args,
        ]

    def start(self, wait_ready: float = 0) -> OperatorProcess:
        """Start it; with `wait_ready`, also wait that many seconds at most for wait_ready()."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        if wait_ready:
            self.wait_ready(wait_ready)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until this process leads (or, without leader election, logged its startup line: cache
        filled; kopf's watches start next)."""
        marker = b"llmstage ready" if "--no-leader-elect" in self.extra_args else b"became the leader"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                if marker in f.read():
                    time.sleep(1.0)  # kopf opens its watch streams right after the startup handlers
                    return
            if not self.alive():
                raise RuntimeError(
                    f"operator exited with {self.proc and self.proc.returncode}:\n{self.log()[-3000:]}"
                )
            time.sleep(0.1)
        raise RuntimeError(f"operator not ready after {timeout:.0f}s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a node failure would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        """Send `sig` (SIGKILL after `timeout`); the exit code, None if it never started."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    # ---------------------------------------------------------------- what the benchmark reads

    def memory(self) -> dict[str, float]:
        """VmHWM (peak RSS) and VmRSS in MiB, from /proc."""
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0]) / 1024
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU the operator used so far (its own process; no children)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metrics(self) -> dict[str, float]:
        """The llmstage_* counters summed over labels, e.g. {"llmstage_reconciles_total": 5400}."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return {}
        sums: dict[str, float] = {}
        for line in text.splitlines():
            m = re.match(r"^(llmstage_[a-z_]+?)(_total)?(\{[^}]*\})? ([0-9.e+-]+)$", line)
            if m and not m.group(1).endswith(("_created", "_bucket")):
                name = m.group(1) + (m.group(2) or "")
                sums[name] = sums.get(name, 0.0) + float(m.group(4))
        return sums
