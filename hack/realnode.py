"""The real node: one worker where containers really run, beside the kwok nodes.

kubelet and kube-proxy (from the same k8s.io/kubernetes module as the control plane),
containerd 2.x with runc, the CNI bridge/host-local/loopback/portmap plugins, CoreDNS as a pod,
and a local OCI registry (distribution) that containerd uses in place of docker.io and
registry.k8s.io. All built from pinned Go modules by hack/tools/build.sh; images are built here
by hack/images.py. Standard library only, like hack/cluster.py, which calls this module.

Network: a bridge `llmstage0` with 10.88.0.1/16 is created before anything starts. It is the
node's address (kubelet --node-ip), the pods' gateway (the CNI bridge plugin reuses it), the
registry's listen address, and where the `kubernetes` Service points (the apiserver listens on
all addresses while the real node runs). Pods get 10.88.x.y from host-local; kwok's fake pods
keep 10.244.0.0/16. kube-proxy runs in nftables mode; the CNI plugins masquerade with nftables.

One real node per machine: kubelet's port, the bridge and the nftables tables are host-wide.
A cluster with LLMSTAGE_CLUSTER_PORT_OFFSET set, or a second clone while another owns the node,
runs kwok-only and says so. LLMSTAGE_REAL_NODE=0 turns the node off, =1 makes its absence an
error (default `auto`: on where the machine can run containers).

The node is tainted `llmstage.io/real-node=true:NoSchedule`, so the pods of the kwok-based
tests never land on it; what should run for real tolerates the taint and selects
`llmstage.io/node: real`.

`down` stops everything in reverse and then checks that nothing is left: no process of ours, no
mount under our directories, no network namespace, nftables table, bridge, cgroup or changed
sysctl (tests/realnode/test_teardown.py runs the same check).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from clusterlib import (
    HERE,
    KUBECONFIG,
    PKI,
    REPO,
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

NODE_NAME = "real-0"
NODE_LABEL = ("llmstage.io/node", "real")
TAINT_KEY = "llmstage.io/real-node"
BRIDGE = "llmstage0"
NODE_IP = "10.88.0.1"
POD_SUBNET = "10.88.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DNS = "10.96.0.10"
REGISTRY_PORT = 25050
REGISTRY = f"{NODE_IP}:{REGISTRY_PORT}"
# The in-cluster name of the registry (a selectorless Service), for what pods pull themselves.
REGISTRY_SERVICE = "registry.kube-system.svc:5000"

NODE_STATE = STATE / "node"
VOLUMES = NODE_STATE / "volumes"  # the real-local StorageClass's directories (hack/volumes.py)
# Unix sockets and containerd's state live on /run: short paths (108-byte socket limit), and
# a reboot clears them.
RUN = Path("/run/llmstage-node")
CONTAINERD_SOCK = RUN / "containerd" / "containerd.sock"
# containerd's shims put their sockets here whatever the state dir (pkg/shim/util_unix.go).
SHIM_SOCKETS = Path("/run/containerd/s")
OWNER = RUN / "owner"  # which clone's cluster owns the machine's one real node
BASELINE = NODE_STATE / "baseline.json"  # host state before `up`, compared after `down`
CGROUP_ROOT = "llmstage"  # kubelet's cgroupRoot: pods live under /sys/fs/cgroup/*/llmstage/
CNI_NETWORK = "llmstage"
TOOLS = REPO / ".tools"
SYSCTLS = {"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"}
# Started in this order, stopped in reverse.
COMPONENTS = ["registry", "containerd", "kubelet", "kube-proxy", "volumes.py"]
NODE_GROUPS = ["runc", "containerd", "cni", "crictl", "coredns", "registry", "crane", "ollama"]
DEBS = ["nftables", "iproute2", "util-linux"]


# ---------------------------------------------------------------- can this machine run it?


def cannot_run_reason() -> str | None:
    """Why this machine cannot run the real node, or None if it can."""
    if os.uname().sysname != "Linux":
        return "containers need Linux"
    if os.geteuid() != 0:
        return "the kubelet, containerd and the CNI plugins need root (run as root, or LLMSTAGE_REAL_NODE=0)"
    filesystems = Path("/proc/filesystems").read_text()
    if "overlay" not in filesystems:
        return "the kernel has no overlay filesystem (containerd's snapshotter needs it)"
    if not Path("/proc/sys/net/bridge").exists():
        return "the kernel has no bridge netfilter (br_netfilter), which Service traffic between pods needs"
    if not Path("/sys/fs/cgroup/memory").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return "no cgroup hierarchy with the memory controller is mounted under /sys/fs/cgroup"
    if subprocess.run(["unshare", "--pid", "--fork", "--mount", "true"], capture_output=True).returncode != 0:
        return "cannot create PID and mount namespaces (unshare failed)"
    return None


def offset() -> int:
    return int(os.environ.get("LLMSTAGE_CLUSTER_PORT_OFFSET", "0"))


def wanted() -> bool:
    """Whether this cluster should have the real node; fails when it is required and cannot."""
    mode = os.environ.get("LLMSTAGE_REAL_NODE", "auto")
    if mode == "0":
        return False
    why = cannot_run_reason()
    if why is None and offset():
        why = (
            "LLMSTAGE_CLUSTER_PORT_OFFSET is set: the machine's one real node belongs to the default cluster"
        )
    if why is None and owned_by_other():
        why = f"another clone's cluster owns this machine's real node ({OWNER.read_text().strip()})"
    if why is None:
        return True
    if mode == "1":
        fail(f"LLMSTAGE_REAL_NODE=1 but the real node cannot run here: {why}")
    log(f"no real node: {why}; the cluster has kwok nodes only (nothing runs in a container)")
    return False


def owned_by_other() -> bool:
    return OWNER.exists() and OWNER.read_text().strip() != str(STATE)


def present() -> bool:
    """The real node runs (or its pieces do) for this clone's cluster."""
    return OWNER.exists() and not owned_by_other()


# ---------------------------------------------------------------- tools and files


def tool(group: str, name: str) -> Path:
    return TOOLS / "bin" / name if group != "cni" else TOOLS / "cni" / name


def build_tools() -> None:
    t0 = time.monotonic()
    res = subprocess.run([str(REPO / "hack" / "tools" / "build.sh"), *NODE_GROUPS])
    if res.returncode != 0:
        fail("building the real node's tools failed (output above)")
    dt = time.monotonic() - t0
    if dt > 5:
        log(f"real node tools built in {dt:.0f}s")


def ensure_debs() -> None:
    res = subprocess.run(["bash", "-c", f"source {REPO}/hack/lib/debs.sh && ensure_debs {' '.join(DEBS)}"])
    if res.returncode != 0:
        fail("installing the real node's Debian packages failed")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def kubeconfig_for(name: str, user_cert: str) -> Path:
    """A kubeconfig with the client certificate PKI/USER_CERT.{crt,key}, for a node component."""
    path = NODE_STATE / f"{name}.kubeconfig"
    server = json.loads(KUBECONFIG.read_text())["clusters"][0]["cluster"]["server"]
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority": str(PKI / "ca.crt")}}
        ],
        "users": [
            {
                "name": name,
                "user": {
                    "client-certificate": str(PKI / f"{user_cert}.crt"),
                    "client-key": str(PKI / f"{user_cert}.key"),
                },
            }
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": name}}],
        "current-context": "local",
    }
    write(path, json.dumps(cfg, indent=2) + "\n")
    path.chmod(0o600)
    return path


def ensure_node_pki(ensure_leaf) -> None:  # type: ignore[no-untyped-def]
    client = "extendedKeyUsage=clientAuth\n"
    ensure_leaf("kubelet", f"/O=system:nodes/CN=system:node:{NODE_NAME}", client)
    # Bound to system:node-proxier by the default RBAC policy.
    ensure_leaf("kube-proxy", "/CN=system:kube-proxy", client)
    # The apiserver's identity towards kubelets (logs, exec, port-forward).
    ensure_leaf("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client", client)
    ensure_leaf(
        "kubelet-serving",
        f"/O=system:nodes/CN=system:node:{NODE_NAME}",
        f"subjectAltName=IP:{NODE_IP},IP:127.0.0.1,DNS:{NODE_NAME}\nextendedKeyUsage=serverAuth\n",
    )


def containerd_config() -> Path:
    root = NODE_STATE / "containerd"
    certs = root / "certs.d"
    # Images of docker.io and registry.k8s.io come from the local registry, and only from it:
    # with no internet, a fallback to the real hosts could only time out.
    for host in ("docker.io", "registry.k8s.io", REGISTRY):
        write(
            certs / host / "hosts.toml",
            f'server = "http://{REGISTRY}"\n\n'
            f'[host."http://{REGISTRY}"]\n  capabilities = ["pull", "resolve"]\n',
        )
    cfg = f"""version = 4
root = "{root / "root"}"
state = "{RUN / "containerd" / "state"}"
# Nothing from the host's /etc/containerd.
imports = []
# Plugins that would write outside our directories, or that we do not use.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.erofs", "io.containerd.tracing.processor.v1.otlp"]

[plugins.'io.containerd.server.v1.grpc']
  address = "{CONTAINERD_SOCK}"

[plugins.'io.containerd.server.v1.ttrpc']
  address = "{RUN / "containerd" / "containerd.sock.ttrpc"}"

[plugins.'io.containerd.nri.v1.nri']
  # NRI would listen on /var/run/nri/nri.sock; no NRI plugin is used.
  disable = true

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  # This VM withholds CAP_SYS_RESOURCE even from root, so no process may lower its
  # oom_score_adj below its parent's (pause asks for -998): clamp to containerd's own (0).
  restrict_oom_score_adj = true
  # Network namespaces under the state dir, not /var/run/netns: `down` finds every one.
  netns_mounts_under_state_dir = true

  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"

    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{tool("runc", "runc").resolve()}"
        Root = "{RUN / "runc"}"
        SystemdCgroup = false

  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{(TOOLS / "cni").resolve()}"]
    conf_dir = "{NODE_STATE / "cni" / "net.d"}"
    max_conf_num = 1

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "registry.k8s.io/pause:{pause_version()}"

  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "{certs}"

[plugins.'io.containerd.grpc.v1.cri']
  # Streaming server for exec/attach/port-forward, on loopback only.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""
    path = root / "config.toml"
    write(path, cfg)
    return path


def pause_version() -> str:
    """The pause tag that Kubernetes v1.37.2 builds (build/pause/Makefile TAG); hack/images.py pushes it."""
    return "3.10.2"


def cni_config() -> None:
    conf = {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "ipMasqBackend": "nftables",
                # A pod that reaches itself through its own Service needs the reply back on its port.
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(NODE_STATE / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}, "backend": "nftables"},
        ],
    }
    write(NODE_STATE / "cni" / "net.d" / "10-llmstage.conflist", json.dumps(conf, indent=2) + "\n")


def kubelet_config() -> Path:
    cfg = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This host mounts cgroup v1; kubelet 1.35+ refuses it unless told otherwise.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_ROOT}",
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCK}",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(PKI / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(PKI / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(PKI / "kubelet-serving.key"),
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "clusterDomain": "cluster.local",
        "clusterDNS": [CLUSTER_DNS],
        "resolvConf": "/etc/resolv.conf",
        "podLogsDir": str(NODE_STATE / "pod-logs"),
        "registerWithTaints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}],
        "maxPods": 50,
        # Test bed: free disk is whatever the machine has; do not evict on its percentage.
        "evictionHard": {"memory.available": "200Mi", "nodefs.available": "1Gi", "imagefs.available": "1Gi"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "protectKernelDefaults": False,
        "makeIPTablesUtilChains": False,
        "shutdownGracePeriod": "0s",
        "localStorageCapacityIsolation": True,
        "featureGates": {},
    }
    path = NODE_STATE / "kubelet-config.json"
    write(path, json.dumps(cfg, indent=2) + "\n")
    return path


def kube_proxy_config() -> Path:
    cfg = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clientConnection": {"kubeconfig": str(kubeconfig_for("kube-proxy", "kube-proxy"))},
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": POD_SUBNET,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # kube-proxy would otherwise raise nf_conntrack_max and friends host-wide.
        "conntrack": {"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "nodePortAddresses": [f"{NODE_IP}/32"],
    }
    path = NODE_STATE / "kube-proxy-config.json"
    write(path, json.dumps(cfg, indent=2) + "\n")
    return path


def command_for(name: str) -> tuple[list[str], dict[str, str] | None]:
    if name == "registry":
        return [str(tool("registry", "registry")), "serve", str(HERE / "registry.yml")], {
            "REGISTRY_HTTP_ADDR": REGISTRY,
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(STATE / "registry"),
            "OTEL_TRACES_EXPORTER": "none",
        }
    if name == "containerd":
        # The shim is found on PATH, and the shim finds runc by the BinaryName above.
        path = f"{tool('containerd', 'containerd').resolve().parent}:{os.environ.get('PATH', '')}"
        return [str(tool("containerd", "containerd")), "--config", str(containerd_config())], {"PATH": path}
    if name == "kubelet":
        return [
            str(tool("kubernetes", "kubelet")),
            f"--config={kubelet_config()}",
            f"--kubeconfig={kubeconfig_for('kubelet', 'kubelet')}",
            f"--root-dir={NODE_STATE / 'kubelet'}",
            f"--cert-dir={NODE_STATE / 'kubelet' / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            f"--node-labels={NODE_LABEL[0]}={NODE_LABEL[1]}",
            "--v=1",
        ], None
    if name == "kube-proxy":
        return [str(tool("kubernetes", "kube-proxy")), f"--config={kube_proxy_config()}", "--v=1"], None
    if name == "volumes.py":
        return [
            sys.executable,
            str(REPO / "hack" / "volumes.py"),
            str(KUBECONFIG),
            str(VOLUMES),
            NODE_NAME,
        ], None
    raise KeyError(name)


# ---------------------------------------------------------------- host set-up


def read_sysctl(key: str) -> str:
    return Path("/proc/sys", key).read_text().strip()


def set_sysctl(key: str, value: str) -> None:
    Path("/proc/sys", key).write_text(value + "\n")


def ensure_bridge() -> None:
    if not Path(f"/sys/class/net/{BRIDGE}").exists():
        run("ip", "link", "add", BRIDGE, "type", "bridge")
    if NODE_IP not in run("ip", "-4", "-o", "addr", "show", "dev", BRIDGE).stdout:
        run("ip", "addr", "add", f"{NODE_IP}/16", "dev", BRIDGE)
    run("ip", "link", "set", BRIDGE, "up")


def cgroup_dirs() -> list[Path]:
    """Our cgroup under each mounted v1 hierarchy (and the unified one, if pods use it)."""
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():  # a pure cgroup v2 host
        return [base / CGROUP_ROOT]
    return [d / CGROUP_ROOT for d in sorted(base.iterdir()) if d.is_dir() and not d.is_symlink()]


def host_snapshot() -> dict[str, object]:
    """What `down` must give back: the host's nftables tables, links, netns, sysctls."""
    nft = run("nft", "list", "tables", check=False).stdout.split("\n")
    links = run("ip", "-o", "link", "show").stdout.split("\n")
    return {
        "nft_tables": sorted(line.strip() for line in nft if line.strip()),
        "links": sorted(re.sub(r"^\d+: ", "", line).split(":")[0].split("@")[0] for line in links if line),
        "netns": sorted(os.listdir("/run/netns")) if Path("/run/netns").exists() else [],
        "sysctls": {k: read_sysctl(k) for k in SYSCTLS},
        "run_containerd": SHIM_SOCKETS.parent.exists(),
    }


# ---------------------------------------------------------------- up


def up() -> None:
    t0 = time.monotonic()
    ensure_debs()
    build_tools()
    RUN.mkdir(parents=True, exist_ok=True)
    NODE_STATE.mkdir(parents=True, exist_ok=True)
    if not OWNER.exists():
        # First start since the last `down`: remember the host as it was.
        write(BASELINE, json.dumps(host_snapshot(), indent=2) + "\n")
        OWNER.write_text(str(STATE) + "\n")
    ensure_bridge()
    for key, value in SYSCTLS.items():
        set_sysctl(key, value)
    for d in cgroup_dirs():
        d.mkdir(exist_ok=True)
    cni_config()

    start_component("registry")
    wait_for("the local registry", lambda: port_open(REGISTRY_PORT, NODE_IP), 30)
    push_images()
    start_component("containerd")
    wait_for("containerd's socket", CONTAINERD_SOCK.exists, 60)
    start_component("kubelet")
    start_component("kube-proxy")
    start_component("volumes.py")
    wait_for(f"node {NODE_NAME} Ready", node_ready, 180, interval=0.5)
    apply_addons()
    wait_for("CoreDNS Available", coredns_available, 180, interval=0.5)
    log(
        f"real node {NODE_NAME} up in {time.monotonic() - t0:.1f}s (containerd, kubelet, kube-proxy, CoreDNS)"
    )


def start_component(name: str) -> None:
    argv, env = command_for(name)
    start_process(name, argv, env)


def push_images() -> None:
    """The images the node itself needs (pause, CoreDNS) and the Ollama image and model."""
    res = subprocess.run(
        [sys.executable, str(REPO / "hack" / "images.py"), "push", "--registry", REGISTRY,
         "pause", "coredns", "ollama", "fake-llm"],
    )  # fmt: skip
    if res.returncode != 0:
        fail("pushing the real node's images failed (output above)")
    res = subprocess.run(
        [
            os.environ.get("PYTHON", "python3"),
            str(REPO / "hack" / "images.py"),
            "model",
            "--registry",
            REGISTRY,
        ]
    )
    if res.returncode != 0:
        fail("pushing the model to the local registry failed (output above)")


def node_ready() -> bool:
    res = kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
    if res.returncode != 0:
        return False
    conds = {c["type"]: c["status"] for c in json.loads(res.stdout).get("status", {}).get("conditions", [])}
    return conds.get("Ready") == "True"


def coredns_available() -> bool:
    res = kubectl("get", "deployment", "coredns", "-n", "kube-system", "-o", "json", check=False)
    if res.returncode != 0:
        return False
    status = json.loads(res.stdout).get("status", {})
    return bool(status.get("availableReplicas"))


def apply_addons() -> None:
    text = (HERE / "realnode-addons.yaml").read_text()
    text = text.replace("@REGISTRY_ENDPOINT@", NODE_IP).replace("@REGISTRY_PORT@", str(REGISTRY_PORT))
    text = text.replace("@REGISTRY@", REGISTRY).replace("@CLUSTER_DNS@", CLUSTER_DNS)
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=llmstage-testbed",
        "-f",
        "-",
        stdin=text,
    )


# ---------------------------------------------------------------- down


def down() -> None:
    if not present() and not any(pid_of(n) for n in COMPONENTS):
        return
    t0 = time.monotonic()
    # The kubelet first, or it would start again what is removed below.
    stop_process("kubelet")
    if pid_of("containerd"):
        # Every pod sandbox: stops the containers, runs CNI DEL (veths, IPs, masquerade rules)
        # and unmounts the network namespaces.
        res = crictl("rmp", "--all", "--force")
        if res.returncode != 0:
            log(f"crictl rmp --all failed ({res.returncode}): {res.stderr.strip()[-300:]}")
    stop_process("containerd")
    kill_leftovers()
    stop_process("kube-proxy")
    if tool("kubernetes", "kube-proxy").exists():
        # Removes kube-proxy's nftables tables (and iptables chains of any earlier mode).
        subprocess.run([str(tool("kubernetes", "kube-proxy")), "--cleanup", "--v=0"], capture_output=True)
    stop_process("registry")
    stop_process("volumes.py")
    shutil.rmtree(VOLUMES, ignore_errors=True)
    unmount_under([NODE_STATE, RUN])
    baseline = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    remove_new_nft_tables(baseline)
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        # A pod's network namespace can outlive its sandbox for minutes while the kernel times
        # out an orphaned TCP socket of a killed process, and its veth with it: delete the host
        # ends still on our bridge (that removes both ends; the namespace goes with the socket).
        for line in run("ip", "-o", "link", "show", "master", BRIDGE).stdout.splitlines():
            veth = line.split(":")[1].strip().split("@")[0]
            subprocess.run(["ip", "link", "del", veth], capture_output=True)
        run("ip", "link", "del", BRIDGE)
    for d in cgroup_dirs():
        remove_cgroup_tree(d)
    if not baseline.get("run_containerd", True):
        # Shim sockets live in /run/containerd/s whatever containerd's state dir is.
        shutil.rmtree(SHIM_SOCKETS.parent, ignore_errors=True)
    for key, value in baseline.get("sysctls", {}).items():
        set_sysctl(key, value)
    shutil.rmtree(NODE_STATE / "cni" / "ipam", ignore_errors=True)
    shutil.rmtree(NODE_STATE / "kubelet", ignore_errors=True)
    problems = leftovers(baseline)
    if problems:
        fail("the real node left things behind:\n  " + "\n  ".join(problems))
    shutil.rmtree(RUN, ignore_errors=True)
    BASELINE.unlink(missing_ok=True)
    log(
        f"real node down in {time.monotonic() - t0:.1f}s; "
        "no process, mount, netns, nftables table or cgroup left"
    )


def crictl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(tool("crictl", "crictl")),
            "--runtime-endpoint",
            f"unix://{CONTAINERD_SOCK}",
            "--timeout",
            "60s",
            *args,
        ],
        capture_output=True,
        text=True,
    )


def our_processes() -> list[tuple[int, str]]:
    """Processes running a binary from the tool cache or the clone's .tools (shims, runc, servers)."""
    roots = [str(Path(os.environ.get("LLMSTAGE_TOOLS_CACHE", Path.home() / ".cache" / "llmstage" / "tools")))]
    roots.append(str(TOOLS.resolve()))
    found = []
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            exe = os.readlink(pid_dir / "exe")
            cmdline = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        node_binary = any(
            b in exe for b in ("containerd", "runc", "kubelet", "kube-proxy", "registry", "coredns")
        )
        if (
            node_binary
            and any(exe.startswith(r) for r in roots)
            and (str(STATE) in cmdline or str(RUN) in cmdline)
        ):
            found.append((int(pid_dir.name), cmdline.strip()))
    return found


def kill_leftovers() -> None:
    """containerd-shim-runc-v2 outlives containerd by design; containers it still holds go too."""
    for pid, _ in our_processes():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    deadline = time.monotonic() + 10
    while our_processes() and time.monotonic() < deadline:
        time.sleep(0.1)


def mounts_under(roots: list[Path]) -> list[str]:
    prefixes = [str(r.resolve()) if r.exists() else str(r) for r in roots]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            found.append(point)
    return found


def unmount_under(roots: list[Path]) -> None:
    for _ in range(5):
        points = mounts_under(roots)
        if not points:
            return
        for point in sorted(points, key=len, reverse=True):  # deepest first
            subprocess.run(["umount", point], capture_output=True)
    for point in sorted(mounts_under(roots), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def remove_new_nft_tables(baseline: dict[str, object]) -> None:
    """nftables tables that appeared while the node ran and are ours: the CNI plugins' (bridge
    masquerade, portmap; empty once every pod is gone), and the empty `ip nat` that the bridge
    plugin's iptables teardown creates through iptables-nft. A table someone else filled is kept."""
    before = set(baseline.get("nft_tables", []))  # type: ignore[call-overload]
    for table in set(host_snapshot()["nft_tables"]) - before:  # type: ignore[call-overload]
        _, family, name = table.split()
        listing = run("nft", "list", "table", family, name, check=False).stdout
        has_rules = any(
            line.strip() and not line.strip().startswith(("table", "chain", "type", "comment", "}", "policy"))
            for line in listing.splitlines()
        )
        if name.startswith("cni_") or not has_rules:
            subprocess.run(["nft", "delete", "table", family, name], capture_output=True)


def remove_cgroup_tree(root: Path) -> None:
    """Kill what still runs in our cgroups (containers whose shim is gone), then remove them."""
    if not root.exists():
        return
    for procs in root.rglob("cgroup.procs"):
        for pid in procs.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
    deadline = time.monotonic() + 10
    while any(p.read_text().strip() for p in root.rglob("cgroup.procs")) and time.monotonic() < deadline:
        time.sleep(0.1)
    for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()
    with contextlib.suppress(OSError):
        root.rmdir()


def leftovers(baseline: dict[str, object]) -> list[str]:
    """Everything the real node could leave behind that is still there."""
    problems = [f"process {pid}: {cmd}" for pid, cmd in our_processes()]
    problems += [f"mount {m}" for m in mounts_under([NODE_STATE, RUN])]
    now = host_snapshot()
    for kind in ("nft_tables", "links", "netns"):
        before = set(baseline.get(kind, []))  # type: ignore[call-overload]
        problems += [f"{kind}: {x}" for x in sorted(set(now[kind]) - before)]  # type: ignore[call-overload]
    for key, value in dict(baseline.get("sysctls", {})).items():  # type: ignore[call-overload]
        if read_sysctl(key) != value:
            problems.append(f"sysctl {key} is {read_sysctl(key)}, was {value}")
    problems += [f"cgroup {d}" for d in cgroup_dirs() if d.exists()]
    if not baseline.get("run_containerd", True) and SHIM_SOCKETS.parent.exists():
        problems.append(f"directory {SHIM_SOCKETS.parent}")
    problems += [f"process {n} (pid file)" for n in COMPONENTS if pid_of(n)]
    return problems


def status_ok() -> bool:
    return all(pid_of(n) for n in COMPONENTS) and node_ready()


def status() -> bool:
    ok = True
    for name in COMPONENTS:
        running = bool(pid_of(name))
        ok &= running
        print(f"{name:26} {'running' if running else 'stopped'}  pid={pid_of(name) or '-'}")
    return ok
