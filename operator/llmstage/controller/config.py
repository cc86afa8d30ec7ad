"""The operator's configuration: everything `llmstage run` is told, typed, each default once.

`llmstage run` builds one OperatorConfig from its flags and the environment (cli/run.py) and
hands it to the controller (controller/operator.py), which reads nothing else: no flag, no
environment variable, no module state. The defaults below are the flags' defaults too.

Plain Python on purpose: `llmstage --help` reads these defaults without loading the controller.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmstage.api.defaults import ServingDefaults
    from llmstage.resolve.tenancy import TenancyPolicy

# LLMServices reconciled at once (the work queue's slots; the API client's pool has 8 more).
DEFAULT_CONCURRENCY = 32
# Seconds new pods may stay unschedulable before the service is Stalled (controller/plan.py).
DEFAULT_UNSCHEDULABLE_GRACE = 120.0
# Where Prometheus runs: each LLMService's NetworkPolicy admits it to vLLM's /metrics.
DEFAULT_MONITORING_NAMESPACE = "monitoring"
DEFAULT_LIVENESS_URL = "http://0.0.0.0:8080/healthz"
DEFAULT_METRICS_PORT = 9090
DEFAULT_METRICS_ADDRESS = "0.0.0.0"
DEFAULT_IDENTITY = "llmstage"


@dataclass(frozen=True)
class Timing:
    """controller-runtime's defaults: LeaseDuration 15 s, RenewDeadline 10 s, RetryPeriod 2 s."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def problems(self) -> list[str]:
        """client-go's checks (leaderelection.NewLeaderElector), as messages naming the flags."""
        out = []
        if not self.lease_duration > self.renew_deadline:
            out.append("--leader-elect-lease-duration must be greater than --leader-elect-renew-deadline")
        if not self.renew_deadline > 1.2 * self.retry_period:
            out.append("--leader-elect-renew-deadline must be greater than 1.2 x --leader-elect-retry-period")
        if not self.retry_period > 0:
            out.append("--leader-elect-retry-period must be positive")
        if self.lease_duration < 1:
            out.append("--leader-elect-lease-duration must be at least 1 second")
        return out


@dataclass(frozen=True)
class LeaderElection:
    """The Lease the replicas campaign for (controller/leader.py)."""

    namespace: str
    name: str
    timing: Timing = field(default_factory=Timing)


@dataclass(frozen=True)
class Endpoint:
    """Where an HTTP endpoint of the operator listens."""

    host: str
    port: int
    path: str
    url: str  # as it was given, for messages

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """`http://0.0.0.0:8080/healthz` -> Endpoint("0.0.0.0", 8080, "/healthz", url)."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"only http:// health endpoints are served, not {url!r}")
        return cls(parts.hostname or "localhost", parts.port or 80, parts.path or "/healthz", url)


@dataclass(frozen=True)
class MetricsEndpoint:
    """/metrics: HTTPS with each scrape's token reviewed (`secure`), or plain HTTP."""

    address: str = DEFAULT_METRICS_ADDRESS
    port: int = DEFAULT_METRICS_PORT
    secure: bool = True
    cert_dir: str | None = None  # tls.crt and tls.key; None: a self-signed certificate made at start


@dataclass(frozen=True)
class OperatorConfig:
    # Credentials: a kubeconfig (and context), else the pod's ServiceAccount when `in_cluster`.
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    # Namespaces watched (kopf accepts globs); empty: every namespace.
    namespaces: tuple[str, ...] = ()
    # Who this process is, for kopf, the Lease and the user agent of its requests.
    identity: str = DEFAULT_IDENTITY
    concurrency: int = DEFAULT_CONCURRENCY
    unschedulable_grace: float = DEFAULT_UNSCHEDULABLE_GRACE
    monitoring_namespace: str | None = DEFAULT_MONITORING_NAMESPACE
    # None: this process always leads (one replica).
    leader_election: LeaderElection | None = None
    # What spec.pod may add to the serving pods (resolve/tenancy.py); None: TenancyPolicy().
    tenancy: TenancyPolicy | None = None
    # The install's serving defaults (`--defaults FILE`), read once at start.
    serving_defaults: ServingDefaults | None = None
    # /healthz (and /readyz beside it); None: not served.
    liveness: Endpoint | None = field(default_factory=lambda: Endpoint.from_url(DEFAULT_LIVENESS_URL))
    # /metrics; None: not served.
    metrics: MetricsEndpoint | None = field(default_factory=MetricsEndpoint)
