"""`llmstage run`: the operator (kopf underneath)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import secrets
import socket
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmstage import __version__
from llmstage.cli.common import parser_for
from llmstage.controller.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_LIVENESS_URL,
    DEFAULT_METRICS_ADDRESS,
    DEFAULT_METRICS_PORT,
    DEFAULT_MONITORING_NAMESPACE,
    DEFAULT_UNSCHEDULABLE_GRACE,
    Endpoint,
    LeaderElection,
    MetricsEndpoint,
    OperatorConfig,
    Timing,
)

if TYPE_CHECKING:
    from llmstage.api.defaults import ServingDefaults
    from llmstage.resolve.tenancy import TenancyPolicy

EXAMPLES = """\
examples:
  llmstage run --all-namespaces
  llmstage run -n team-a -n team-b --metrics-port 9090 --log-format json
  KUBECONFIG=.cluster/kubeconfig llmstage run -A --liveness http://127.0.0.1:8080/healthz

Run two replicas or more: they elect a leader with a Lease (--leader-elect, on by default); the
leader reconciles, the others keep warm caches and take over when it goes. /readyz is served
beside the --liveness URL.
"""

# Why a start failed, in one line: the flag to change for each port.
PORT_HINTS = {
    "metrics": "--metrics-port (0 turns metrics off)",
    "health": "--liveness (another port, or 'off')",
}


def register(subparsers: Any) -> None:
    p = parser_for(subparsers, "run", "run the operator", __doc__, EXAMPLES)
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="watch this namespace (repeatable)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    p.add_argument(
        "--liveness",
        default=DEFAULT_LIVENESS_URL,
        metavar="URL",
        help="where /healthz is served, with /readyz beside it (default: %(default)s; 'off' disables both)",
    )
    p.add_argument(
        "--metrics-port", type=int, default=DEFAULT_METRICS_PORT, help="Prometheus metrics port (0: off)"
    )
    p.add_argument(
        "--metrics-address", default=DEFAULT_METRICS_ADDRESS, help="address for the metrics endpoint"
    )
    p.add_argument(
        "--metrics-secure",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="HTTPS, and each scrape's bearer token checked with a TokenReview and a SubjectAccessReview "
        "for GET /metrics (default: on, except on a loopback --metrics-address)",
    )
    p.add_argument(
        "--metrics-cert-dir",
        metavar="DIR",
        help="tls.crt and tls.key of the metrics endpoint (default: a self-signed certificate made at start)",
    )
    p.add_argument(
        "--log-format",
        choices=["auto", "text", "json"],
        default="auto",
        help="auto (default): text in a terminal, JSON lines otherwise",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    p.add_argument(
        "--defaults",
        metavar="FILE",
        help="the install's serving defaults, read at start (the chart mounts its servingDefaults "
        "value here): registry mirror, pull secrets, scheduling, labels, IDs, PodMonitor labels",
    )
    p.add_argument(
        "--download-image",
        metavar="IMAGE",
        help="image of the s3 and gcs model download steps, llmstage's own (the chart passes the "
        "operator's image); servingDefaults.downloadImage wins where the defaults file sets it",
    )
    p.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="LLMServices reconciled at once"
    )
    p.add_argument(
        "--unschedulable-grace",
        type=float,
        default=DEFAULT_UNSCHEDULABLE_GRACE,
        metavar="SECONDS",
        help="how long new pods may stay unschedulable before the service is Stalled",
    )
    p.add_argument(
        "--monitoring-namespace",
        default=DEFAULT_MONITORING_NAMESPACE,
        metavar="NS",
        help="namespace of Prometheus: each LLMService's NetworkPolicy admits it to vLLM's /metrics "
        "(default: %(default)s; '': none)",
    )
    tenancy = p.add_argument_group(
        "tenant boundary",
        "what spec.pod may add to the serving pods; anything else is refused (InvalidSpec) and nothing is "
        "applied (docs/security.md)",
    )
    tenancy.add_argument(
        "--allowed-volume-types",
        type=names,
        default=None,
        metavar="TYPES",
        help=f"comma-separated core/v1 volume types (default: {DEFAULT_VOLUME_TYPES}); csi: any CSI driver",
    )
    tenancy.add_argument(
        "--allowed-csi-drivers",
        type=names,
        default=(),
        metavar="DRIVERS",
        help="CSI drivers of inline csi volumes, comma-separated, or '*' (default: none)",
    )
    tenancy.add_argument(
        "--allowed-service-accounts",
        type=names,
        default=(),
        metavar="NAMES",
        help="ServiceAccounts besides default: NAME (any namespace), NAMESPACE/NAME or '*' (default: none)",
    )
    tenancy.add_argument(
        "--allow-service-account-token",
        action="store_true",
        help="allow automountServiceAccountToken and projected serviceAccountToken volumes",
    )
    election = p.add_argument_group(
        "leader election", "a coordination.k8s.io Lease; defaults as controller-runtime's"
    )
    election.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="elect a leader among replicas (default: on); --no-leader-elect: this process always writes",
    )
    election.add_argument(
        "--leader-elect-namespace",
        metavar="NS",
        help="namespace of the Lease (default: $POD_NAMESPACE, the pod's own, the kubeconfig's, or default)",
    )
    election.add_argument(
        "--leader-elect-lease-name",
        metavar="NAME",
        help="name of the Lease (default: llmstage, or llmstage-HASH of the watched namespaces)",
    )
    for field, what in (
        ("lease_duration", "how long standbys wait after the last renewal before taking over (default: 15s)"),
        (
            "renew_deadline",
            "how long the leader retries renewing before it stops writing and steps down (default: 10s)",
        ),
        ("retry_period", "time between renewals and between attempts to acquire (default: 2s)"),
    ):
        flag = "--leader-elect-" + field.replace("_", "-")
        election.add_argument(
            flag, type=duration, default=getattr(Timing, field), metavar="DURATION", help=what
        )
    p.set_defaults(func=run)


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list, without empty entries."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


# resolve.tenancy.SAFE_VOLUME_TYPES, spelt out so that `--help` imports no models (a test compares).
DEFAULT_VOLUME_TYPES = "configMap,secret,projected,downwardAPI,emptyDir,persistentVolumeClaim,ephemeral,image"


def tenancy_policy(args: argparse.Namespace) -> TenancyPolicy:
    from llmstage.resolve.tenancy import SAFE_VOLUME_TYPES, TenancyPolicy

    volume_types = args.allowed_volume_types
    return TenancyPolicy(
        volume_types=SAFE_VOLUME_TYPES if volume_types is None else volume_types,
        csi_drivers=args.allowed_csi_drivers,
        service_accounts=args.allowed_service_accounts,
        token_automount=args.allow_service_account_token,
    )


def duration(text: str) -> float:
    """Seconds: `15`, `15s`, `1.5s`, `500ms`, `1m30s` (Go's time.Duration notation)."""
    import re

    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (15s, 500ms, 1m30s)")
    unit = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * unit[u] for n, u in parts)


def configure_logging(fmt: str, level: str) -> None:
    from llmstage import logs

    logs.configure(fmt, level)


def operator_identity() -> str:
    """Who this operator is, for kopf, the Lease and the user agent of its requests: the pod's
    name ($POD_NAME from the downward API, else the host name), the pid and a random part (two
    processes never share an identity, not even a restarted container in the same pod).

    Passed explicitly because kopf's own default calls getpass.getuser(), which raises KeyError
    for a UID without a passwd entry: the image's 65532, or the random UID OpenShift assigns."""
    name = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{name}/{os.getpid()}/{secrets.token_hex(3)}"


def lease_namespace(kubeconfig: str | None, context: str | None = None) -> str:
    """Where the Lease lives when --leader-elect-namespace is not given: the pod's namespace
    ($POD_NAMESPACE, or the service account's), else the kubeconfig context's, else default."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE) as f:
            return f.read().strip()
    except OSError:
        pass
    try:
        from llmstage.kubeapi.credentials import contexts as kubeconfig_contexts

        contexts, active = kubeconfig_contexts(kubeconfig)
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        return str((chosen or {}).get("context", {}).get("namespace") or "default")
    except Exception:
        return "default"


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class StartError(Exception):
    """Why `llmstage run` cannot start, said in one line."""


def _bind_error(what: str, where: str, err: OSError) -> StartError:
    reason = {errno.EADDRINUSE: "is already in use", errno.EACCES: "is not allowed for this user"}.get(
        err.errno or 0, f"cannot be used ({err.strerror or err})"
    )
    return StartError(f"llmstage run: {where} {reason}: change {PORT_HINTS[what]}")


def _serving_defaults(path: str | None) -> ServingDefaults | None:
    """--defaults FILE, validated before anything starts: a bad file is one line, not a traceback."""
    if path is None:
        return None
    from llmstage.api.defaults import DefaultsError, parse_defaults

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return parse_defaults(text, path)
    except OSError as err:
        raise StartError(f"llmstage run: --defaults {path}: {err.strerror or err}") from None
    except DefaultsError as err:
        raise StartError(f"llmstage run: --defaults {err}") from None


def _with_download_image(defaults: ServingDefaults | None, image: str | None) -> ServingDefaults | None:
    """--download-image under the defaults file's downloadImage."""
    if image is None or (defaults is not None and defaults.download_image):
        return defaults
    import pydantic

    from llmstage.api.defaults import ServingDefaults

    try:
        alone = ServingDefaults(download_image=image)
    except pydantic.ValidationError:
        raise StartError(f"llmstage run: --download-image {image!r} is not an image reference") from None
    return alone if defaults is None else defaults.model_copy(update={"download_image": alone.download_image})


def _loopback(address: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def metrics_secure(args: argparse.Namespace) -> bool:
    """--metrics-secure, or by default: on unless only this host can connect."""
    chosen: bool | None = args.metrics_secure
    if chosen is not None:
        return chosen
    return not _loopback(str(args.metrics_address))


def _leader_election(args: argparse.Namespace) -> LeaderElection | None:
    if not args.leader_elect:
        return None
    from llmstage.controller.leader import lease_name_for

    timing = Timing(
        args.leader_elect_lease_duration, args.leader_elect_renew_deadline, args.leader_elect_retry_period
    )
    if timing.problems():
        raise StartError("llmstage run: " + "; ".join(timing.problems()))
    return LeaderElection(
        namespace=args.leader_elect_namespace or lease_namespace(args.kubeconfig, args.context),
        name=args.leader_elect_lease_name or lease_name_for(args.namespaces),
        timing=timing,
    )


def _liveness(url: str) -> Endpoint | None:
    if url == "off":
        return None
    try:
        return Endpoint.from_url(url)
    except ValueError as err:
        raise StartError(f"llmstage run: --liveness: {err}") from None


def operator_config(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> OperatorConfig:
    """The flags of `llmstage run` and its environment as one OperatorConfig, checked: a problem
    is a StartError naming the flag."""
    from llmstage.controller import kubeconfig

    serving_defaults = _with_download_image(_serving_defaults(args.defaults), args.download_image)
    if why := kubeconfig.problem(args.kubeconfig, context=args.context):
        raise StartError(f"llmstage run: {why}")
    leader_election = _leader_election(args)
    return OperatorConfig(
        kubeconfig=args.kubeconfig,
        context=args.context,
        in_cluster=bool(environ.get("KUBERNETES_SERVICE_HOST")),
        namespaces=tuple(args.namespaces or ()),
        identity=operator_identity(),
        concurrency=args.concurrency,
        unschedulable_grace=args.unschedulable_grace,
        monitoring_namespace=args.monitoring_namespace or None,
        leader_election=leader_election,
        tenancy=tenancy_policy(args),
        serving_defaults=serving_defaults,
        liveness=_liveness(args.liveness),
        metrics=_metrics(args),
    )


def _metrics(args: argparse.Namespace) -> MetricsEndpoint | None:
    if not args.metrics_port:
        return None
    return MetricsEndpoint(
        args.metrics_address, args.metrics_port, secure=metrics_secure(args), cert_dir=args.metrics_cert_dir
    )


def metrics_server(config: OperatorConfig) -> Any:
    """The metrics endpoint on its bound socket (raises StartError for a port that is taken)."""
    from llmstage.controller import health
    from llmstage.controller.kube import USER_AGENT, Kube, RetryPolicy
    from llmstage.controller.metrics_server import MetricsServer, Reviewer
    from llmstage.controller.operator import connect as connect_with

    metrics = config.metrics
    assert metrics is not None
    where = f"{metrics.address}:{metrics.port} (--metrics-port)"
    try:
        sock = health.bind(metrics.address, metrics.port)
    except OSError as err:
        raise _bind_error("metrics", where, err) from None
    if not metrics.secure:
        if not _loopback(metrics.address):
            logging.getLogger("llmstage.run").warning(
                "metrics on %s are served over plain HTTP to anyone who reaches the port "
                "(--no-metrics-secure); put an authenticating proxy in front",
                where,
            )
        return MetricsServer(sock, None, None)
    from llmstage.controller.selfsigned import server_context

    try:
        context = server_context(metrics.cert_dir, [socket.gethostname(), "localhost"])
    except OSError as err:
        sock.close()
        why = err.strerror or err
        raise StartError(f"llmstage run: --metrics-cert-dir {metrics.cert_dir}: {why}") from None

    async def connect() -> Kube:
        # A client of its own, without the leader's write fence: standbys are scraped too.
        agent = f"{USER_AGENT} metrics-auth ({config.identity})"
        return await connect_with(config, 2, agent, retry=RetryPolicy(attempts=3))

    return MetricsServer(sock, context, Reviewer(connect))


def bind_servers(config: OperatorConfig, health_state: Any) -> list[Any]:
    """Both ports are taken before anything else starts: a port in use is one line, not a traceback."""
    from llmstage.controller import health

    servers: list[Any] = []
    if config.liveness is not None:
        live = config.liveness
        try:
            sock = health.bind(live.host, live.port)
        except OSError as err:
            raise _bind_error("health", f"{live.host}:{live.port} (--liveness {live.url})", err) from None
        servers.append(health.HealthServer(sock, live.path, health_state))
    if config.metrics is not None:
        try:
            servers.append(metrics_server(config))
        except StartError:
            for server in servers:
                server.sock.close()
            raise
    return servers


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except StartError as err:
        print(err, file=sys.stderr)
        return 2


def check_credentials(config: OperatorConfig) -> None:
    """Credentials that cannot work stop the start with one line (a pod without its token, an
    exec plugin section that is not one), instead of a startup retried with a traceback."""
    from llmstage.controller.operator import credentials_of
    from llmstage.kubeapi.errors import ConfigError

    try:
        credentials_of(config)
    except ConfigError as err:
        raise StartError(f"llmstage run: {err}") from None


def without_kubernetes_client() -> None:
    """Keep the generated kubernetes client out of the operator's process. kopf imports it
    whenever it is installed (kopf/_cogs/helpers/thirdparty.py, to recognise its model objects,
    which llmstage never passes); the image does not install it, but a venv that has it for other
    tools (the tests' venv) would load about 10 MiB of it, and `llmstage run` there would not be what
    the image runs. Called before kopf is imported; kopf treats the client as absent."""
    if "kopf" not in sys.modules:
        sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]


def _run(args: argparse.Namespace) -> int:
    without_kubernetes_client()
    from llmstage.controller.operator import Operator
    from llmstage.controller.operator import run as run_operator

    configure_logging(args.log_format, args.log_level)
    config = operator_config(args)
    check_credentials(config)
    operator = Operator(config)
    servers = bind_servers(config, operator.health)
    election = config.leader_election
    logging.getLogger("llmstage.run").info(
        "llmstage %s starting as %s%s",
        __version__,
        config.identity,
        f"; leader election on lease {election.namespace}/{election.name}" if election else "",
    )
    try:
        run_operator(operator, servers)
    except KeyboardInterrupt:
        return 0
    return 0
