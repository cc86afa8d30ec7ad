#!/usr/bin/env python3
"""The local test cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok,
the LeaderWorkerSet controller (hack/lws.py), and one real node where the machine can run
containers (hack/realnode/).

Everything lives in .cluster/ (PKI, kubeconfig, etcd data, logs, pid files). The control plane
is the real one built by `make tools` and listens on 127.0.0.1, except the apiserver while the
real node runs: its pods reach it through the node's bridge address, so it then listens on all
addresses (clients still need a certificate or token). kwok simulates seven nodes (two CPU, one
L4, four H100: room for two 2-node groups); the real node runs containers for real. Standard
library only: runs before the virtualenv exists.

    python3 hack/cluster.py up       # idempotent; prints how long it took
    python3 hack/cluster.py down     # stops every process it started, frees every port
    python3 hack/cluster.py status
    python3 hack/cluster.py images   # the real-node tier's images (vLLM's CPU image: 18 min cold)
    python3 hack/cluster.py free-disk   # after down: the node's image store and the registry's blobs
    python3 hack/cluster.py restart-apiserver   # reliability soak only: everyone's clients reconnect
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lws
import realnode
from clusterlib import (
    BIN,
    HERE,
    KUBECONFIG,
    LOGS,
    PIDS,
    PKI,
    STATE,
    fail,
    kubectl,
    log,
    pid_of,
    port_open,
    run,
    start_process,
    stop_process,
    wait_for,
)
from realnode.config import NODE_STATE

# Unusual ports so a developer's own etcd or cluster on the defaults does not collide;
# LLMSTAGE_CLUSTER_PORT_OFFSET shifts them all so two clones can each run a cluster.
_OFFSET = int(os.environ.get("LLMSTAGE_CLUSTER_PORT_OFFSET", "0"))
PORTS = {
    name: port + _OFFSET
    for name, port in {
        "etcd": 23790,
        "etcd-peer": 23800,
        "kube-apiserver": 16443,
        "kube-controller-manager": 20257,
        "kube-scheduler": 20259,
        "kwok": 20247,
        "lws-webhook": 20943,
        "lws-health": 20981,
    }.items()
}
CONTEXT = "llmstage-local"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
# Start order; stop runs in reverse. lws-controller: the LeaderWorkerSet controller (hack/lws.py).
COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "lws-controller"]
# Four H100 nodes: two multi-node groups of two (tests/integration/test_multi_node.py).
EXPECTED_NODES = ["cpu-0", "cpu-1", "gpu-l4-0", "gpu-h100-0", "gpu-h100-1", "gpu-h100-2", "gpu-h100-3"]


# ---------------------------------------------------------------- PKI and kubeconfig


# The apiserver's names: loopback for host clients, the kubernetes Service's ClusterIP for pods,
# and the real node's bridge address (hack/realnode/) that the Service's endpoint points to.
APISERVER_SAN = (
    "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,IP:10.88.0.1,DNS:localhost,DNS:kubernetes,"
    "DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
    "extendedKeyUsage=serverAuth\n"
)


def ensure_leaf(name: str, subj: str, ext: str) -> None:
    """PKI/NAME.{crt,key} signed by the cluster CA; made again when its subject or extensions change."""
    spec = PKI / f"{name}.ext"
    wanted = f"# {subj}\n{ext}"
    if (PKI / f"{name}.crt").exists() and spec.exists() and spec.read_text() == wanted:
        return
    spec.write_text(wanted)
    key, csr, crt = (str(PKI / f"{name}.{x}") for x in ("key", "csr", "crt"))
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", subj)
    run(
        "openssl", "x509", "-req", "-in", csr, "-CA", str(PKI / "ca.crt"), "-CAkey", str(PKI / "ca.key"),
        "-CAcreateserial", "-days", "3650", "-extfile", str(spec), "-out", crt,
    )  # fmt: skip


def ensure_pki() -> None:
    PKI.mkdir(parents=True, exist_ok=True)
    if not (PKI / "ca.crt").exists():
        run(
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(PKI / "ca.key"),
            "-out", str(PKI / "ca.crt"), "-days", "3650", "-subj", "/CN=llmstage-local-ca",
        )  # fmt: skip
    ensure_leaf("apiserver", "/CN=kube-apiserver", APISERVER_SAN)
    ensure_leaf("admin", "/O=system:masters/CN=llmstage-admin", "extendedKeyUsage=clientAuth\n")
    if not (PKI / "sa.pub").exists():
        run("openssl", "genrsa", "-out", str(PKI / "sa.key"), "2048")
        run("openssl", "rsa", "-in", str(PKI / "sa.key"), "-pubout", "-out", str(PKI / "sa.pub"))


def write_kubeconfig() -> None:
    def b64(name: str) -> str:
        return base64.b64encode((PKI / name).read_bytes()).decode()

    # JSON is valid YAML; embedding the certificates keeps the file usable from anywhere.
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {
                    "server": f"https://127.0.0.1:{PORTS['kube-apiserver']}",
                    "certificate-authority-data": b64("ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": "llmstage-admin",
                "user": {"client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")},
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "llmstage-admin"}}],
        "current-context": CONTEXT,
    }
    KUBECONFIG.write_text(json.dumps(cfg, indent=2) + "\n")
    KUBECONFIG.chmod(0o600)


# ---------------------------------------------------------------- processes


def command_for(name: str, with_node: bool = False) -> list[str]:
    k = str(KUBECONFIG)
    p = PKI
    if name == "etcd":
        return [
            str(BIN / "etcd"),
            f"--data-dir={STATE / 'etcd'}",
            "--name=llmstage-local",
            f"--listen-client-urls=http://127.0.0.1:{PORTS['etcd']}",
            f"--advertise-client-urls=http://127.0.0.1:{PORTS['etcd']}",
            f"--listen-peer-urls=http://127.0.0.1:{PORTS['etcd-peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{PORTS['etcd-peer']}",
            f"--initial-cluster=llmstage-local=http://127.0.0.1:{PORTS['etcd-peer']}",
            # Throwaway test data: durability is not worth the fsync cost.
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=8589934592",
            "--log-level=warn",
        ]
    if name == "kube-apiserver":
        if with_node:
            # Pods on the real node reach the apiserver through the kubernetes Service, whose
            # endpoint is the node's bridge address; logs and exec go to the kubelet.
            where = [
                "--bind-address=0.0.0.0",
                f"--advertise-address={realnode.NODE_IP}",
                f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
                "--kubelet-preferred-address-types=InternalIP",
            ]
        else:
            # Loopback cannot be an endpoint of the kubernetes Service, so no reconciler.
            where = [
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
            ]
        return [
            str(BIN / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{PORTS['etcd']}",
            f"--secure-port={PORTS['kube-apiserver']}",
            *where,
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            f"--cert-dir={p}",
            # Audit log of write requests: the operator's idle-write tests count these.
            f"--audit-policy-file={HERE / 'audit-policy.yaml'}",
            f"--audit-log-path={LOGS / 'audit.log'}",
            "--audit-log-maxsize=200",
            "--audit-log-maxbackup=2",
            "--audit-log-mode=batch",
            "--audit-log-batch-max-wait=1s",
            "--v=1",
        ]
    if name == "kube-controller-manager":
        return [
            str(BIN / "kube-controller-manager"),
            f"--kubeconfig={k}",
            f"--authentication-kubeconfig={k}",
            f"--authorization-kubeconfig={k}",
            "--bind-address=127.0.0.1",
            f"--secure-port={PORTS['kube-controller-manager']}",
            "--leader-elect=false",
            "--controllers=*",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'ca.crt'}",
            f"--cluster-signing-cert-file={p / 'ca.crt'}",
            f"--cluster-signing-key-file={p / 'ca.key'}",
            # The test bed creates thousands of objects at once; default 20 QPS would be the
            # bottleneck of every benchmark rather than the operator.
            "--kube-api-qps=300",
            "--kube-api-burst=600",
            "--concurrent-deployment-syncs=20",
            "--concurrent-replicaset-syncs=20",
            "--concurrent-service-endpoint-syncs=20",
            "--concurrent-gc-syncs=40",
            "--v=1",
        ]
    if name == "kube-scheduler":
        return [
            str(BIN / "kube-scheduler"),
            f"--kubeconfig={k}",
            f"--authentication-kubeconfig={k}",
            f"--authorization-kubeconfig={k}",
            "--bind-address=127.0.0.1",
            f"--secure-port={PORTS['kube-scheduler']}",
            "--leader-elect=false",
            "--kube-api-qps=300",
            "--kube-api-burst=600",
            "--v=1",
        ]
    if name == "kwok":
        return [
            str(BIN / "kwok"),
            f"--kubeconfig={k}",
            f"--config={HERE / 'kwok-stages.yaml'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-lease-duration-seconds=40",
            f"--cidr={POD_CIDR}",
            "--node-ip=127.0.0.1",
            "--node-name=localhost",
            f"--node-port={PORTS['kwok']}",
            f"--server-address=127.0.0.1:{PORTS['kwok']}",
        ]
    if name == "lws-controller":
        return lws.command()
    raise KeyError(name)


def start(name: str, with_node: bool = False) -> None:
    if name == "lws-controller":
        # Its CRDs and webhook configurations first: the controller watches the one and serves the other.
        lws.write_config(PORTS["lws-webhook"], PORTS["lws-health"], ensure_leaf)
        lws.install(PORTS["lws-webhook"])
        start_process(name, command_for(name, with_node), env={"KUBECONFIG": str(KUBECONFIG)})
        return
    start_process(name, command_for(name, with_node))


def apiserver_has_node_flags() -> bool:
    """Whether the running apiserver was started for the real node."""
    pid = pid_of("kube-apiserver")
    return bool(pid) and "--bind-address=0.0.0.0" in Path(f"/proc/{pid}/cmdline").read_bytes().decode().split(
        "\0"
    )


def healthy(name: str) -> bool:
    if not pid_of(name):
        return False
    if name == "etcd":
        return port_open(PORTS["etcd"])
    if name == "kube-apiserver":
        return (
            port_open(PORTS["kube-apiserver"])
            and kubectl("get", "--raw", "/readyz", check=False).stdout.strip() == "ok"
        )
    if name == "lws-controller":
        return port_open(PORTS["lws-health"]) and port_open(PORTS["lws-webhook"])
    return port_open(PORTS[name])


# ---------------------------------------------------------------- cluster contents


def ensure_contents() -> None:
    kubectl("apply", "--server-side", "--field-manager=llmstage-testbed", "-f", str(HERE / "nodes.yaml"))
    storage = ["apply", "--server-side", "--field-manager=llmstage-testbed", "-f", str(HERE / "storage.yaml")]
    res = kubectl(*storage, check=False)
    if res.returncode != 0 and "immutable" in res.stderr:
        # A cluster created by an older checkout has the class with other immutable fields
        # (volumeBindingMode): replace it; bound claims keep their volumes.
        kubectl("delete", "storageclass", "kwok-volume", "--wait=true")
        res = kubectl(*storage, check=False)
    if res.returncode != 0:
        fail(f"kubectl {' '.join(storage)} failed: {res.stderr.strip()}")


def nodes_ready() -> bool:
    res = kubectl("get", "nodes", "-o", "json", check=False)
    if res.returncode != 0:
        return False
    ready = set()
    for node in json.loads(res.stdout)["items"]:
        conds = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        # The node-lifecycle controller must also have lifted the not-ready taint.
        taints = {t["key"] for t in node.get("spec", {}).get("taints", [])}
        if conds.get("Ready") == "True" and "node.kubernetes.io/not-ready" not in taints:
            ready.add(node["metadata"]["name"])
    return set(EXPECTED_NODES) <= ready


def default_sa_exists() -> bool:
    return kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0


def up() -> None:
    t0 = time.monotonic()
    with_node = realnode.present() or realnode.wanted()
    running = all(healthy(c) for c in COMPONENTS) and nodes_ready()
    if running and (not with_node or (realnode.status_ok() and apiserver_has_node_flags())):
        log(f"cluster already running ({time.monotonic() - t0:.1f}s); kubeconfig: {KUBECONFIG}")
        return
    STATE.mkdir(parents=True, exist_ok=True)
    ensure_pki()
    if with_node:
        realnode.ensure_node_pki(ensure_leaf)
    write_kubeconfig()
    if with_node and pid_of("kube-apiserver") and not apiserver_has_node_flags():
        stop_process("kube-apiserver")  # started without the real node: start it again with it
    for name in COMPONENTS:
        if not healthy(name):
            start(name, with_node)
        if name == "etcd":
            wait_for("etcd", lambda: port_open(PORTS["etcd"]), 30)
        elif name == "kube-apiserver":
            wait_for("kube-apiserver /readyz", lambda: healthy("kube-apiserver"), 120)
        else:
            wait_for(name, lambda n=name: healthy(n), 60)  # type: ignore[misc]
    ensure_contents()
    wait_for(f"{len(EXPECTED_NODES)} Ready nodes without the not-ready taint", nodes_ready, 120, interval=0.5)
    wait_for("the default ServiceAccount", default_sa_exists, 60)
    log(f"control plane and kwok nodes up in {time.monotonic() - t0:.1f}s; kubeconfig: {KUBECONFIG}")
    if with_node:
        realnode.up()
    log(f"cluster up in {time.monotonic() - t0:.1f}s")


def down() -> None:
    t0 = time.monotonic()
    # Processes run against this cluster by other scripts (the demo's operator) go first.
    extras = [f.stem for f in PIDS.glob("*.pid") if f.stem not in COMPONENTS] if PIDS.exists() else []
    for name in extras:
        stop_process(name)
    realnode.down()
    for name in reversed(COMPONENTS):
        stop_process(name)
    busy = [f"{n}:{p}" for n, p in PORTS.items() if port_open(p)]
    if busy:
        fail(f"ports still open after stopping: {', '.join(busy)}")
    # Data goes too: the next cluster-up starts clean (PKI is kept, it is slow to make).
    subprocess.run(["rm", "-rf", str(STATE / "etcd")], check=True)
    log(f"cluster down in {time.monotonic() - t0:.1f}s; nothing left listening")


def free_disk() -> None:
    """After `down`: remove the real node's image store and the local registry's blobs (about
    20 GB with vLLM's CPU image). The per-machine image cache keeps the images; the next
    `images` pushes them again and the node pulls what its pods need. `make test` runs it when
    it started the cluster, before the kind tier, which needs the room."""
    if any(pid_of(name) for name in COMPONENTS) or realnode.present():
        fail("free-disk: the cluster is running; `python3 hack/cluster.py down` first")
    freed = [STATE / "registry", NODE_STATE / "containerd"]
    subprocess.run(["rm", "-rf", *map(str, freed)], check=True)
    log(f"freed {', '.join(str(p.relative_to(STATE.parent)) for p in freed)}")


def restart_apiserver() -> None:
    """Stop kube-apiserver and start it again (reliability soak: clients must reconnect)."""
    t0 = time.monotonic()
    with_node = apiserver_has_node_flags()
    pid = pid_of("kube-apiserver")
    if pid:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while pid_of("kube-apiserver") and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_of("kube-apiserver"):
            # A loaded API server can take minutes to drain its watches; the soak wants a restart.
            os.killpg(pid, signal.SIGKILL)
            wait_for("kube-apiserver to stop", lambda: not pid_of("kube-apiserver"), 30, interval=0.1)
    start("kube-apiserver", with_node)
    wait_for("kube-apiserver /readyz", lambda: healthy("kube-apiserver"), 120)
    log(f"kube-apiserver restarted in {time.monotonic() - t0:.1f}s")


def status() -> int:
    ok = True
    for name in COMPONENTS:
        h = healthy(name)
        ok &= h
        print(f"{name:26} {'running' if h else 'stopped'}  pid={pid_of(name) or '-'}")
    if realnode.present():
        ok &= realnode.status()
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["up", "down", "status", "images", "free-disk", "restart-apiserver"])
    a = ap.parse_args()
    if a.action == "up":
        up()
    elif a.action == "down":
        down()
    elif a.action == "free-disk":
        free_disk()
    elif a.action == "restart-apiserver":
        restart_apiserver()
    elif a.action == "images":
        # Before the tests, not inside them: a cold build of vLLM's CPU image takes longer than
        # a test's timeout. Nothing to do on a kwok-only cluster.
        if realnode.present():
            realnode.push_test_images()
        else:
            print("no real node in this cluster: no images to push")
    else:
        return status()
    return 0


if __name__ == "__main__":
    sys.exit(main())
