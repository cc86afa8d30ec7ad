"""`llmstage run` as a subprocess for the benchmark and the reliability tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KUBECONFIG = REPO / ".cluster" / "kubeconfig"
# One operator per bed, killed and restarted by the reliability scenarios: a restarted process
# waits for the killed one's Lease to expire, so these runs use short lease timings (3 s instead
# of 15 s); `extra` arguments given later win.
LEASE_TIMINGS = (
    "--leader-elect-lease-duration=3s",
    "--leader-elect-renew-deadline=2s",
    "--leader-elect-retry-period=0.5s",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Operator:
    def __init__(
        self,
        namespaces: list[str],
        log_path: Path,
        *extra: str,
        kubeconfig: Path = KUBECONFIG,
        wrapper: list[str] | None = None,
        python_args: list[str] | None = None,
    ) -> None:
        self.namespaces, self.log_path, self.extra = namespaces, log_path, extra
        self.kubeconfig, self.wrapper, self.python_args = kubeconfig, wrapper or [], python_args or []
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def start(self, wait_ready: float = 60) -> Operator:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        ns_args = [a for ns in self.namespaces for a in ("-n", ns)]
        cmd = [
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
            *ns_args,
            *LEASE_TIMINGS,
            *self.extra,
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if wait_ready:
            self.wait_ready(wait_ready)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float) -> None:
        """Until this process leads (or, without leader election, logged its startup line: cache
        filled; kopf's watches start next)."""
        marker = b"llmstage ready" if "--no-leader-elect" in self.extra else b"became the leader"
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

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a node failure would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 20) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
