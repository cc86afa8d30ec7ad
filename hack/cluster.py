#!/usr/bin/env python3
"""The local test cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.

Everything listens on 127.0.0.1 only and lives in .cluster/ (PKI, kubeconfig, etcd data, logs,
pid files). Nodes and pods are simulated by kwok; the control plane is the real one built by
`make tools`. Standard library only, so it runs before the virtualenv exists.

    python3 hack/cluster.py up       # idempotent; prints how long it took
    python3 hack/cluster.py down     # stops every process it started, frees every port
    python3 hack/cluster.py status
    python3 hack/cluster.py restart-apiserver   # reliability soak only: everyone's clients reconnect
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".tools" / "bin"
STATE = Path(os.environ.get("LLMSTAGE_CLUSTER_DIR", REPO / ".cluster"))
PKI, LOGS, PIDS = STATE / "pki", STATE / "logs", STATE / "pids"
KUBECONFIG = STATE / "kubeconfig"
HERE = Path(__file__).resolve().parent / "cluster"

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
    }.items()
}
CONTEXT = "llmstage-local"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
# Start order; stop runs in reverse.
COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
EXPECTED_NODES = ["cpu-0", "cpu-1", "gpu-l4-0", "gpu-h100-0"]


def log(msg: str) -> None:
    print(f">> {msg}", flush=True)


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(*args: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(args, capture_output=True, text=True)
    if check and res.returncode != 0:
        fail(f"{' '.join(args[:3])}... failed ({res.returncode}): {res.stderr.strip() or res.stdout.strip()}")
    return res


def kubectl(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN / "kubectl"), "--kubeconfig", str(KUBECONFIG), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, input=stdin)
    if check and res.returncode != 0:
        fail(f"kubectl {' '.join(args)} failed: {res.stderr.strip()}")
    return res


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(what: str, check, timeout: float, interval: float = 0.2) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    fail(f"timed out after {timeout:.0f}s waiting for {what} (logs in {LOGS})")


# ---------------------------------------------------------------- PKI and kubeconfig


def ensure_pki() -> None:
    if (PKI / "admin.crt").exists() and (PKI / "sa.pub").exists():
        return
    PKI.mkdir(parents=True, exist_ok=True)
    os.chdir(PKI)
    ossl = "openssl"
    run(
        ossl,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3650",
        "-subj",
        "/CN=llmstage-local-ca",
    )

    def leaf(name: str, subj: str, ext: str) -> None:
        Path(f"{name}.ext").write_text(ext)
        run(
            ossl,
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            subj,
        )
        run(
            ossl,
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            f"{name}.ext",
            "-out",
            f"{name}.crt",
        )

    leaf(
        "apiserver",
        "/CN=kube-apiserver",
        "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n",
    )
    leaf("admin", "/O=system:masters/CN=llmstage-admin", "extendedKeyUsage=clientAuth\n")
    run(ossl, "genrsa", "-out", "sa.key", "2048")
    run(ossl, "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
    os.chdir(REPO)


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


def command_for(name: str) -> list[str]:
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
        return [
            str(BIN / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{PORTS['etcd']}",
            "--bind-address=127.0.0.1",
            f"--secure-port={PORTS['kube-apiserver']}",
            # Loopback cannot be an endpoint of the kubernetes Service, so no reconciler.
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
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
    raise KeyError(name)


def pid_of(name: str) -> int | None:
    f = PIDS / f"{name}.pid"
    if not f.exists():
        return None
    try:
        pid = int(f.read_text())
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return None
    # A recycled pid would be some other program: check it is still ours.
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    return pid if argv[0].endswith(name) or any(a.endswith(f"bin/{name}") for a in argv) else None


def start(name: str) -> None:
    if pid_of(name):
        return
    binary = BIN / name
    if not binary.exists():
        fail(f"{binary} is missing: run `make tools` first")
    LOGS.mkdir(parents=True, exist_ok=True)
    PIDS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"{name}.log", "ab") as out:  # the child keeps its own copy of the fd
        proc = subprocess.Popen(
            command_for(name),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=STATE,
        )
    (PIDS / f"{name}.pid").write_text(str(proc.pid))


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
    if all(healthy(c) for c in COMPONENTS) and nodes_ready():
        log(f"cluster already running ({time.monotonic() - t0:.1f}s); kubeconfig: {KUBECONFIG}")
        return
    STATE.mkdir(parents=True, exist_ok=True)
    ensure_pki()
    write_kubeconfig()
    for name in COMPONENTS:
        if not healthy(name):
            start(name)
        if name == "etcd":
            wait_for("etcd", lambda: port_open(PORTS["etcd"]), 30)
        elif name == "kube-apiserver":
            wait_for("kube-apiserver /readyz", lambda: healthy("kube-apiserver"), 120)
        else:
            wait_for(name, lambda n=name: port_open(PORTS[n]), 60)  # type: ignore[misc]
    ensure_contents()
    wait_for("4 Ready nodes without the not-ready taint", nodes_ready, 120, interval=0.5)
    wait_for("the default ServiceAccount", default_sa_exists, 60)
    log(f"cluster up in {time.monotonic() - t0:.1f}s; kubeconfig: {KUBECONFIG}")


def down() -> None:
    t0 = time.monotonic()
    # Processes run against this cluster by other scripts (the demo's operator) go first.
    extras = [f.stem for f in PIDS.glob("*.pid") if f.stem not in COMPONENTS] if PIDS.exists() else []
    for name in extras + list(reversed(COMPONENTS)):
        pid = pid_of(name)
        if pid:
            os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while pid_of(name) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_of(name):
                os.killpg(pid, signal.SIGKILL)
                time.sleep(0.2)
        (PIDS / f"{name}.pid").unlink(missing_ok=True)
    busy = [f"{n}:{p}" for n, p in PORTS.items() if port_open(p)]
    if busy:
        fail(f"ports still open after stopping: {', '.join(busy)}")
    # Data goes too: the next cluster-up starts clean (PKI is kept, it is slow to make).
    subprocess.run(["rm", "-rf", str(STATE / "etcd")], check=True)
    log(f"cluster down in {time.monotonic() - t0:.1f}s; nothing left listening")


def restart_apiserver() -> None:
    """Stop kube-apiserver and start it again (reliability soak: clients must reconnect)."""
    t0 = time.monotonic()
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
    start("kube-apiserver")
    wait_for("kube-apiserver /readyz", lambda: healthy("kube-apiserver"), 120)
    log(f"kube-apiserver restarted in {time.monotonic() - t0:.1f}s")


def status() -> int:
    ok = True
    for name in COMPONENTS:
        h = healthy(name)
        ok &= h
        print(f"{name:26} {'running' if h else 'stopped'}  pid={pid_of(name) or '-'}")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["up", "down", "status", "restart-apiserver"])
    a = ap.parse_args()
    if a.action == "up":
        up()
    elif a.action == "down":
        down()
    elif a.action == "restart-apiserver":
        restart_apiserver()
    else:
        return status()
    return 0


if __name__ == "__main__":
    sys.exit(main())
