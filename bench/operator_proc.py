"""The benchmark's operator: testkit's launcher on the bed's namespaces, its metrics on a free
port, and short lease timings where a scenario kills and restarts it."""

from __future__ import annotations

import socket
from pathlib import Path

from testkit.launcher import OperatorProcess

REPO = Path(__file__).resolve().parent.parent
KUBECONFIG = REPO / ".cluster" / "kubeconfig"
# One operator per bed, killed and restarted by the reliability scenarios: a restarted process
# waits for the killed one's Lease to expire, so those runs use short lease timings (3 s instead
# of 15 s); `extra` arguments given later win. The convergence figures (P1-P5) use the defaults,
# as a deployed operator does: on a saturated 2-CPU machine a 2-s renew deadline is missed, and
# every lost Lease reconciles every service again (docs/benchmarks.md).
LEASE_TIMINGS = (
    "--leader-elect-lease-duration=3s",
    "--leader-elect-renew-deadline=2s",
    "--leader-elect-retry-period=0.5s",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Operator(OperatorProcess):
    def __init__(
        self,
        namespaces: list[str],
        log_path: Path,
        *extra: str,
        kubeconfig: Path = KUBECONFIG,
        wrapper: list[str] | None = None,
        python_args: list[str] | None = None,
        short_lease: bool = True,
    ) -> None:
        ns_args = [a for ns in namespaces for a in ("-n", ns)]
        super().__init__(
            kubeconfig,
            log_path,
            *ns_args,
            *(LEASE_TIMINGS if short_lease else ()),
            *extra,
            metrics_port=free_port(),
            wrapper=wrapper,
            python_args=python_args,
        )
        self.namespaces = namespaces

    def start(self, wait_ready: float = 60) -> Operator:
        super().start(wait_ready)
        return self
