"""The LeaderWorkerSet controller on the local control plane (hack/cluster.py starts and stops it).

The real controller, built from its Go module (hack/tools/lws, LINK_DIR .tools/lws with the CRDs
of the same version beside the binary), runs as a process on this machine like kwok, with:

- its CRDs (leaderworkersets, and disaggregatedsets, which the same manager also watches);
- its webhooks, without cert-manager and without its own cert rotation: that rotation writes a
  Secret and signs for the webhook Service's DNS name, but the API server here reaches no
  Service (no kube-proxy), so the webhook configurations call https://127.0.0.1:PORT/PATH and
  trust the cluster CA, which signs the serving certificate (IP SAN 127.0.0.1) in .cluster/pki.
  The pod webhooks are what put LWS_LEADER_ADDRESS, LWS_WORKER_INDEX and the group labels on a
  group's pods; they only see pods with the leaderworkerset.sigs.k8s.io/name label (the
  objectSelector of the release's config/webhook patches), so other pods never wait for them.
- leader election off and metrics off; /readyz on its health port.

Standard library only: runs before the virtualenv exists.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

from clusterlib import PKI, REPO, STATE, kubectl

TOOL = REPO / ".tools" / "lws"
BINARY = TOOL / "lws-controller"
CRDS = TOOL / "crds"
CERTS = STATE / "lws" / "certs"
CONFIG = STATE / "lws" / "config.yaml"
SET_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"

# The release's webhooks (config/webhook/manifests.yaml with its mutating and validating patches,
# sigs.k8s.io/lws v0.9.0): name, path, API group, resources, operations, pods-only selector.
MUTATING = [
    ("mleaderworkerset.kb.io", "/mutate-leaderworkerset-x-k8s-io-v1-leaderworkerset",
     "leaderworkerset.x-k8s.io", "leaderworkersets", ["CREATE", "UPDATE"]),
    ("mpod.kb.io", "/mutate--v1-pod", "", "pods", ["CREATE"]),
]  # fmt: skip
VALIDATING = [
    ("vleaderworkerset.kb.io", "/validate-leaderworkerset-x-k8s-io-v1-leaderworkerset",
     "leaderworkerset.x-k8s.io", "leaderworkersets", ["CREATE", "UPDATE"]),
    ("vpod.kb.io", "/validate--v1-pod", "", "pods", ["CREATE", "UPDATE"]),
    ("vdisaggregatedset.kb.io", "/validate-disaggregatedset-x-k8s-io-v1-disaggregatedset",
     "disaggregatedset.x-k8s.io", "disaggregatedsets", ["CREATE", "UPDATE"]),
]  # fmt: skip


def command() -> list[str]:
    # The kubeconfig comes from $KUBECONFIG (controller-runtime's GetConfigOrDie), set by cluster.py.
    return [str(BINARY), f"--config={CONFIG}", "--zap-log-level=info"]


def write_config(webhook_port: int, health_port: int, ensure_leaf: Callable[[str, str, str], None]) -> None:
    """The serving certificate and the controller's configuration (config.lws.x-k8s.io/v1alpha1)."""
    ensure_leaf(
        "lws-webhook", "/CN=lws-webhook", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    )
    CERTS.mkdir(parents=True, exist_ok=True)
    (CERTS / "tls.crt").write_bytes((PKI / "lws-webhook.crt").read_bytes())
    (CERTS / "tls.key").write_bytes((PKI / "lws-webhook.key").read_bytes())
    (CERTS / "tls.key").chmod(0o600)
    config = {
        "apiVersion": "config.lws.x-k8s.io/v1alpha1",
        "kind": "Configuration",
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(CERTS)},
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": "0"},
    }
    CONFIG.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML


def _webhooks(entries: list[tuple[str, str, str, str, list[str]]], port: int) -> list[dict[str, object]]:
    ca = base64.b64encode((PKI / "ca.crt").read_bytes()).decode()
    hooks: list[dict[str, object]] = []
    for name, path, group, resource, operations in entries:
        hook: dict[str, object] = {
            "name": name,
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca},
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "rules": [
                {
                    "apiGroups": [group],
                    "apiVersions": ["v1"],
                    "operations": operations,
                    "resources": [resource],
                }
            ],
        }
        if resource == "pods":
            hook["objectSelector"] = {"matchExpressions": [{"key": SET_NAME_LABEL, "operator": "Exists"}]}
        hooks.append(hook)
    return hooks


def install(webhook_port: int) -> None:
    """The CRDs and the webhook configurations (idempotent: server-side apply)."""
    apply = ["apply", "--server-side", "--force-conflicts", "--field-manager=llmstage-testbed"]
    kubectl(*apply, "-f", str(CRDS))
    configs = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": kind,
                "metadata": {"name": f"lws-{kind.removesuffix('WebhookConfiguration').lower()}-webhook"},
                "webhooks": _webhooks(entries, webhook_port),
            }
            for kind, entries in (
                ("MutatingWebhookConfiguration", MUTATING),
                ("ValidatingWebhookConfiguration", VALIDATING),
            )
        ],
    }
    kubectl(*apply, "-f", "-", stdin=json.dumps(configs))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRDS))
