"""The operator's /metrics as the chart runs it on the real node (the operator image in its pod):
HTTPS, answered only for a bearer token the API server authenticates (TokenReview) whose user may
GET /metrics (SubjectAccessReview). Client pods scrape through the chart's metrics Service: from
the monitoring namespace (the only one the operator's NetworkPolicy admits to that port) without
a token, with a ServiceAccount that may not read metrics, and with the one the chart binds to
the metrics-reader role (conftest: metrics.readers); from any other namespace the port is closed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from testkit.chart import ChartRelease
from testkit.realnode import SCHEDULING, Cluster, netpol_enforced

# Standard library only (the client image's Python): GET URL without and with the pod's own
# ServiceAccount token; prints {"none": [status, has_metrics], "token": [...]}. A refused
# connection is tried again for up to 2 minutes: right after the operator's pods are replaced
# (test_operator_ha.py restarts them), their new addresses reach kube-proxy's and kube-router's
# rules a few seconds after the pods are Ready.
SCRAPE = r"""
import json, ssl, sys, time, urllib.error, urllib.request
url = sys.argv[1]
deadline = time.monotonic() + 120
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # the operator's self-signed certificate (metrics.tls unset)
token = open("/var/run/secrets/kubernetes.io/serviceaccount/token").read().strip()
out = {}
for name, headers in (("none", {}), ("token", {"Authorization": "Bearer " + token})):
    while name not in out:
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=30, context=context) as r:
                out[name] = [r.status, "llmstage_" in r.read().decode()]
        except urllib.error.HTTPError as err:
            out[name] = [err.code, False]
        except urllib.error.URLError as err:
            if not isinstance(err.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                raise
            time.sleep(1)
print(json.dumps(out), flush=True)
"""


def scrape(cluster: Cluster, ns: str, pod: str, image: str, url: str, account: str) -> dict[str, Any]:
    scheduling = {**SCHEDULING, "serviceAccountName": account}
    out = cluster.run_pod(ns, pod, image, ["python3", "-c", SCRAPE, url], scheduling=scheduling)
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_the_operators_metrics_need_a_token_that_may_read_them(
    cluster: Cluster,
    operator_in_cluster: ChartRelease,
    monitoring_namespace: str,
    metrics_reader: str,
    new_namespace: Callable[[str], str],
    images: dict[str, str],
) -> None:
    release = operator_in_cluster
    host = f"{release.fullname}-metrics.{release.namespace}.svc"
    url = f"https://{host}:9090/metrics"
    # The namespace's default ServiceAccount: authenticated, not allowed GET /metrics.
    stranger = scrape(cluster, monitoring_namespace, "scrape-default", images["client"], url, "default")
    assert stranger == {"none": [401, False], "token": [403, False]}, stranger
    # The ServiceAccount bound to the chart's metrics-reader role.
    reader = scrape(cluster, monitoring_namespace, "scrape-reader", images["client"], url, metrics_reader)
    assert reader == {"none": [401, False], "token": [200, True]}, reader

    if netpol_enforced():
        # The operator's NetworkPolicy admits the monitoring namespace only, so another namespace's
        # pod gets no connection at all (kube-router drops it).
        ns = new_namespace("metrics-other")
        outcome = cluster.reach(ns, "scrape-other", images["client"], host, 9090, "/metrics")
        assert outcome in ("timeout", "refused"), outcome
