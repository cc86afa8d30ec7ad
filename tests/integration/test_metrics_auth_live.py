"""The operator's /metrics as the chart sets it up: HTTPS, and answered only for a token the API
server authenticates whose user may GET /metrics. The operator runs as the chart's ServiceAccount
(so the chart's RBAC is what lets it review tokens), started by the test launcher with the
installed Deployment's arguments; the health endpoint stays plain HTTP for the kubelet."""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import OperatorProcess, wait_until
from testkit.chart import ChartRelease, create_namespace, delete_namespaces, forbidden_lines, kubectl, unique

SCRAPER, STRANGER = "scraper", "stranger"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def release(kubeconfig: Path, crd_installed: None, namespace_prefix: str) -> Iterator[ChartRelease]:
    prefix = f"{namespace_prefix.rstrip('-')}m-"
    system = create_namespace(kubeconfig, unique(prefix, "system"))
    readers = [{"kind": "ServiceAccount", "name": SCRAPER, "namespace": system}]
    rel = ChartRelease(
        kubeconfig, f"{prefix}op", system, {"watchNamespaces": [f"{prefix}*"], "metrics.readers": readers}
    )
    try:
        yield rel.install()
    finally:
        rel.uninstall()
        delete_namespaces(kubeconfig, [system])


@pytest.fixture(scope="module")
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture(scope="module")
def operator_of_the_chart(
    release: ChartRelease, ports: tuple[int, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    work = tmp_path_factory.mktemp("metrics-operator")
    assert "--metrics-secure" in release.container_args()
    metrics, health = ports
    proc = release.local_operator(
        release.service_account_kubeconfig(work / "sa.kubeconfig"),
        work / "operator.log",
        "--log-format=text",
        f"--metrics-port={metrics}",
        f"--liveness=http://127.0.0.1:{health}/healthz",
    ).start(wait_ready=60)
    yield proc
    code = proc.stop()
    log = proc.log()
    assert "Traceback" not in log, log[-5000:]
    assert code in (0, -15), log[-3000:]
    assert forbidden_lines(log) == [], "the chart's RBAC refused the operator:\n" + "\n".join(
        forbidden_lines(log)
    )


def token(kubeconfig: Path, release: ChartRelease, account: str) -> str:
    kubectl(kubeconfig, "create", "serviceaccount", account, "-n", release.namespace, check=False)
    return kubectl(kubeconfig, "create", "token", account, "-n", release.namespace).stdout.strip()


def scrape(port: int, bearer: str | None) -> tuple[int, str]:
    # The operator's certificate is self-signed (metrics.tls.secretName is empty): encrypted, not verified.
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    request = urllib.request.Request(f"https://127.0.0.1:{port}/metrics", headers=headers)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_unauthenticated_and_unauthorised_scrapes_are_refused_an_authorised_one_answered(
    kubeconfig: Path, release: ChartRelease, operator_of_the_chart: OperatorProcess, ports: tuple[int, int]
) -> None:
    port = ports[0]
    status, body = scrape(port, None)
    assert status == 401 and "llmstage_" not in body
    assert scrape(port, "not-a-token")[0] == 401
    status, body = scrape(port, token(kubeconfig, release, STRANGER))
    assert status == 403 and "llmstage_" not in body, body
    status, body = scrape(port, token(kubeconfig, release, SCRAPER))
    assert status == 200, body
    assert "llmstage_reconciles_total" in body and "llmstage_leader" in body


def test_plain_http_gets_no_metrics(operator_of_the_chart: OperatorProcess, ports: tuple[int, int]) -> None:
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/metrics", timeout=10).read()


def test_the_health_probes_keep_working(
    operator_of_the_chart: OperatorProcess, ports: tuple[int, int]
) -> None:
    def ready() -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/readyz", timeout=5) as r:
                return json.loads(r.read()) if r.status == 200 else None
        except OSError:
            return None

    assert wait_until(ready, timeout=30, what="/readyz answering 200")["ready"] is True
    with urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/healthz", timeout=5) as r:
        assert r.status == 200


def test_the_chart_grants_token_and_access_reviews_and_nothing_more_for_it(release: ChartRelease) -> None:
    roles = {d["metadata"]["name"]: d for d in release.manifest() if d["kind"] == "ClusterRole"}
    auth = roles[f"{release.fullname}-metrics-auth"]["rules"]
    assert auth == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
    ]
    reader = roles[f"{release.fullname}-metrics-reader"]["rules"]
    assert reader == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
