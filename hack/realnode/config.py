"""What the real node is: its names, addresses and paths, and the files and command lines its
components start from (containerd, CNI, kubelet, kube-proxy, the registry, the volume
provisioner, kube-router's network-policy controller). Pure: writing a config file is the only side
effect. See hack/realnode/__init__.py."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from clusterlib import HERE, KUBECONFIG, PKI, REPO, STATE

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
# Started in this order, stopped in reverse; kube-router not with LLMSTAGE_NETPOL=0 (components()).
COMPONENTS = ["registry", "containerd", "kubelet", "kube-proxy", "kube-router", "volumes.py"]
NODE_GROUPS = ["runc", "containerd", "cni", "crictl", "coredns", "registry", "crane", "ollama"]
DEBS = ["nftables", "iproute2", "util-linux"]
# The NetworkPolicy enforcer: kube-router's network-policy controller, which calls the host's
# iptables (-save, -restore) and ipset (kube-router pkg/utils: exec.LookPath).
NETPOL_GROUPS = ["kube-router"]
NETPOL_DEBS = ["iptables", "ipset"]
# kube-router serves /metrics, /healthz and Go's /debug/pprof on one mux (net/http's default): on
# loopback only (--metrics-addr). Its health port would listen on every address (pkg/healthcheck
# RunServer: Addr ":PORT", no address flag), so it is off (--health-port=0).
KUBE_ROUTER_METRICS_PORT = 20245
# The identity kube-router's client certificate carries, bound to hack/cluster/kube-router.yaml's role.
KUBE_ROUTER_USER = "llmstage:kube-router"


def netpol_enabled() -> bool:
    """Whether the real node enforces NetworkPolicies (kube-router); LLMSTAGE_NETPOL=0 turns it off."""
    return os.environ.get("LLMSTAGE_NETPOL", "1") != "0"


def components() -> list[str]:
    """What this cluster's real node runs, in start order."""
    return [c for c in COMPONENTS if c != "kube-router" or netpol_enabled()]


def tool(group: str, name: str) -> Path:
    return TOOLS / "bin" / name if group != "cni" else TOOLS / "cni" / name


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


def ensure_node_pki(ensure_leaf) -> None:
    client = "extendedKeyUsage=clientAuth\n"
    ensure_leaf("kubelet", f"/O=system:nodes/CN=system:node:{NODE_NAME}", client)
    # Bound to system:node-proxier by the default RBAC policy.
    ensure_leaf("kube-proxy", "/CN=system:kube-proxy", client)
    # Bound to what it reads by hack/cluster/kube-router.yaml.
    ensure_leaf("kube-router", f"/CN={KUBE_ROUTER_USER}", client)
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
    if name == "kube-router":
        return kube_router_argv(
            str(tool("kube-router", "kube-router")), kubeconfig_for("kube-router", "kube-router")
        ), {
            # GetNodeObject (pkg/utils/node.go) looks up $NODE_NAME first, then the host name, then
            # --hostname-override; iptables and ipset are looked up on PATH.
            "NODE_NAME": NODE_NAME,
            "PATH": f"/usr/sbin:/sbin:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
    if name == "volumes.py":
        return [
            sys.executable,
            str(REPO / "hack" / "volumes.py"),
            str(KUBECONFIG),
            str(VOLUMES),
            NODE_NAME,
        ], None
    raise KeyError(name)


def kube_router_argv(binary: str, kubeconfig: Path) -> list[str]:
    """kube-router v2.1.0 as the network-policy controller only (flags: pkg/options/options.go)."""
    return [
        binary,
        # The firewall (NetworkPolicy) only: pods are networked by the CNI bridge, Services by
        # kube-proxy; the router (BGP) and the service proxy (IPVS) stay off.
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        "--run-loadbalancer=false",
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={NODE_NAME}",
        # Traffic to Service addresses is let through the node's INPUT chain (its default,
        # 10.96.0.0/12, is wider than ours); the NodePort range is the API server's default.
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--service-node-port-range=30000-32767",
        "--enable-ipv4=true",
        "--enable-ipv6=false",
        # A full resync repairs drift; every pod, namespace and policy change syncs at once anyway.
        "--iptables-sync-period=1m",
        "--health-port=0",
        "--metrics-addr=127.0.0.1",
        f"--metrics-port={KUBE_ROUTER_METRICS_PORT}",
        "--v=1",
    ]
