"""What the e2e kind cluster is: its names and paths, what this machine needs that an ordinary CI
runner does not (detected, never assumed), and the kind configuration that follows from it. Pure
but for reading /proc and /sys and one connection attempt. See hack/kindcluster/__init__.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools"
STATE = Path(os.environ.get("LLMSTAGE_KIND_DIR", REPO / ".kind"))
LOGS, PIDS = STATE / "logs", STATE / "pids"
KUBECONFIG = STATE / "kubeconfig"
BASELINE = STATE / "baseline.json"  # the host before `up`, compared after `down`
DOCKER_DATA = STATE / "docker"  # the private dockerd's --data-root
DOCKER_SOCK = STATE / "docker.sock"
# The private dockerd's runtime state: /run in its own mount namespace is a private tmpfs, so
# nothing of it (containerd's and the shims' sockets, netns files) is ever on the host's /run.
DOCKER_EXEC_ROOT = "/run/llmstage-kind/docker"
# cgroupfs parent of every container of the private dockerd (the nodes, and what they start):
# one tree to find and remove, apart from the real node's /llmstage.
CGROUP_PARENT = "llmstage-kind"
CLUSTER = "llmstage-e2e"
CONTEXT = f"kind-{CLUSTER}"
# The e2e suite's release (e2e/conftest.py reads the same names from the environment).
RELEASE, RELEASE_NAMESPACE = "llmstage", "llmstage-system"
# A registry for the Ollama model, in the private network namespace on the kind network's gateway
# address, which pods reach through their node (kindnetd masquerades traffic leaving the cluster).
REGISTRY_PORT = 5000
# Where the kind network's gateway is; docker picks the first free /16 from 172.18.0.0 on.
KIND_NETWORK = "kind"
# Host sysctls that every kind node's kubelet sets (pkg/kubelet/cm: setupKernelTunables, with
# protectKernelDefaults false, as kind configures it) and kind's kube-proxy would raise: they are
# not namespaced, so a node in a private network namespace changes them for the whole machine.
# `down` puts back what they were before `up`.
HOST_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/netfilter/nf_conntrack_max",
    "fs/inotify/max_user_watches",
    "fs/inotify/max_user_instances",
)
# Created on the host by Docker for kind's read-only bind mount of /lib/modules when it is absent.
LIB_MODULES = Path("/lib/modules")

# Capabilities by number (include/uapi/linux/capability.h), to name what a bounding set lacks.
CAPABILITIES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]  # fmt: skip


@dataclass(frozen=True)
class Machine:
    """What this machine needs that an ordinary CI runner (Docker, cgroup v2, registry access)
    does not. Each field is detected; an ordinary runner has them all False/empty except
    public_registry and host_docker."""

    # Capabilities root's bounding set lacks. A privileged container (every kind node) asks for
    # all of them and runc refuses ("unable to apply caps"): dockerd's runtime is then a wrapper
    # that leaves them out. And no process may lower oom_score_adj below its parent's
    # (CAP_SYS_RESOURCE), which containerd does for pod sandboxes: restrict_oom_score_adj.
    missing_caps: tuple[str, ...] = ()
    # kubelet 1.35+ refuses cgroup v1 unless failCgroupV1: false.
    cgroup_v1: bool = False
    # Docker Hub answers: stock kindest/node and upstream images, nothing built here.
    public_registry: bool = True
    # A Docker engine already answers (`docker info`): use it instead of starting one.
    host_docker: bool = True
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def builds_images(self) -> bool:
        return not self.public_registry

    def describe(self) -> list[str]:
        out = []
        if self.missing_caps:
            out.append(
                f"the capability bounding set lacks {', '.join(self.missing_caps)}: a runc wrapper "
                "for dockerd, restrict_oom_score_adj in the nodes' containerd"
            )
        if self.cgroup_v1:
            out.append("cgroup v1: failCgroupV1: false for the kubelet")
        out.append(
            "Docker Hub answers: stock kindest/node and upstream images"
            if self.public_registry
            else "no public registry: node image and every image built here"
        )
        out.append(
            "a Docker engine answers: using it"
            if self.host_docker
            else "no Docker engine: a private dockerd in its own network and mount namespaces"
        )
        return out + list(self.notes)


def bounding_set() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise RuntimeError("no CapBnd in /proc/self/status")


def missing_capabilities(bnd: int | None = None) -> tuple[str, ...]:
    bnd = bounding_set() if bnd is None else bnd
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    return tuple(
        CAPABILITIES[c] if c < len(CAPABILITIES) else str(c) for c in range(last + 1) if not bnd >> c & 1
    )


def cgroup_v1() -> bool:
    return not Path("/sys/fs/cgroup/cgroup.controllers").exists()


def public_registry_reachable(timeout: float = 5) -> bool:
    """Docker Hub's registry answers (401 without a token is an answer)."""
    try:
        urllib.request.urlopen("https://registry-1.docker.io/v2/", timeout=timeout)
        return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, TimeoutError):
        return False


def host_docker_answers() -> bool:
    import subprocess

    docker = shutil.which("docker")
    if not docker:
        return False
    return subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0


def detect() -> Machine:
    """This machine, with LLMSTAGE_KIND_IMAGES=public|local and LLMSTAGE_KIND_DOCKER=host|private
    overriding the registry and engine choices."""
    images = os.environ.get("LLMSTAGE_KIND_IMAGES", "auto")
    docker = os.environ.get("LLMSTAGE_KIND_DOCKER", "auto")
    return Machine(
        missing_caps=missing_capabilities(),
        cgroup_v1=cgroup_v1(),
        public_registry=public_registry_reachable() if images == "auto" else images == "public",
        host_docker=host_docker_answers() if docker == "auto" else docker == "host",
    )


def kind_config(machine: Machine, worker_labels: dict[str, str]) -> str:
    """The kind Cluster (kind.x-k8s.io/v1alpha4), as JSON (kind reads YAML), with this machine's
    patches only where it needs them. Two nodes: the control plane (tainted, as kind leaves it
    when there are workers) and a worker with `worker_labels` where every workload runs. A node
    offers the requests of the machine's CPUs: on 2 CPUs, one node would have room for three
    serving pods beside the control plane's 950m, and the scenarios run four at once."""
    cfg: dict[str, object] = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": [{"role": "control-plane"}, {"role": "worker", "labels": worker_labels}],
    }
    kubeadm: list[str] = []
    if machine.cgroup_v1:
        # kubelet's KubeletConfiguration; kind merges it into the one kubeadm writes.
        kubeadm.append(
            "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\nfailCgroupV1: false\n"
        )
    if kubeadm:
        cfg["kubeadmConfigPatches"] = kubeadm
    if machine.missing_caps and "SYS_RESOURCE" in machine.missing_caps:
        # What kind sets for rootless nodes (its base image's config is version 2).
        cfg["containerdConfigPatches"] = [
            '[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n'
        ]
    return json.dumps(cfg, indent=2) + "\n"


def gateway_of(subnet_json: str) -> str:
    """The gateway of the kind network from `docker network inspect kind` (IPv4)."""
    for cfg in json.loads(subnet_json)[0]["IPAM"]["Config"]:
        if re.match(r"^\d+\.\d+\.\d+\.\d+$", cfg.get("Gateway", "")):
            return str(cfg["Gateway"])
    raise ValueError("the kind network has no IPv4 gateway")
