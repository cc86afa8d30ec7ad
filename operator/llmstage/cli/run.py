"""`llmstage run`: the operator (kopf underneath)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Coroutine
from typing import Any

EXAMPLES = """\
examples:
  llmstage run --all-namespaces
  llmstage run -n team-a -n team-b --metrics-port 9090 --log-format json
  KUBECONFIG=.cluster/kubeconfig llmstage run -A --liveness http://127.0.0.1:8080/healthz

Run exactly one replica (Deployment strategy Recreate): two operators would fight over the
same objects. kopf's peering is disabled (standalone) for that reason.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the operator",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    p.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        metavar="URL",
        help="liveness endpoint (default: %(default)s; 'off' disables it)",
    )
    p.add_argument("--metrics-port", type=int, default=9090, help="Prometheus metrics port (0: off)")
    p.add_argument("--metrics-address", default="0.0.0.0", help="address for the metrics endpoint")
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    p.add_argument("--concurrency", type=int, default=32, help="LLMServices reconciled at once")
    p.add_argument(
        "--unschedulable-grace",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long new pods may stay unschedulable before the service is Stalled",
    )
    p.set_defaults(func=run)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kopf logs every watch event at debug/info; keep it at warning unless debugging.
    logging.getLogger("kopf").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


def _quiet_shutdown_noise(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """kopf's watch generators can fail to close cleanly when the loop stops on SIGTERM; that
    is shutdown noise (nothing is lost), so it is logged at debug instead of as a traceback."""
    if str(context.get("message", "")).startswith(
        "an error occurred during closing of asynchronous generator"
    ):
        logging.getLogger("llmstage.run").debug("at shutdown: %s", context.get("exception"))
        return
    loop.default_exception_handler(context)


def operator_identity() -> str:
    """Who this operator is, for kopf: the host (the pod's name in a cluster) and the pid.

    Passed explicitly because kopf's own default calls getpass.getuser(), which raises KeyError
    for a UID without a passwd entry: the image's 65532, or the random UID OpenShift assigns.
    Found when the image first ran on a real node."""
    return f"{socket.gethostname()}/{os.getpid()}"


async def _operate(operator: Coroutine[Any, Any, None]) -> None:
    asyncio.get_running_loop().set_exception_handler(_quiet_shutdown_noise)
    await operator


def run(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import start_http_server

    from llmstage.controller import handlers
    from llmstage.controller.tls import shrink_read_buffers

    configure_logging(args.log_format, args.log_level)
    shrink_read_buffers()
    if args.kubeconfig:
        # kopf's own login reads the same kubeconfig as our client.
        os.environ["KUBECONFIG"] = args.kubeconfig
    handlers.Runtime.options = {
        "kubeconfig": args.kubeconfig,
        "namespaces": args.namespaces,
        "concurrency": args.concurrency,
        "unschedulable_grace": args.unschedulable_grace,
    }
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_address)
    liveness = None if args.liveness == "off" else args.liveness
    try:
        asyncio.run(
            _operate(
                kopf.operator(
                    standalone=True,
                    clusterwide=not args.namespaces,
                    namespaces=args.namespaces or [],
                    liveness_endpoint=liveness,
                    identity=operator_identity(),  # type: ignore[arg-type]
                )
            )
        )
    except KeyboardInterrupt:
        return 0
    return 0
