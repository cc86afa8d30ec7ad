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

NetworkPolicies are enforced on the node by kube-router's network-policy controller (v2.1.0, its
firewall only: iptables rules and ipsets in the host's filter table, through iptables-nft), so the
policies the operator renders are real there. LLMSTAGE_NETPOL=0 leaves it out (the policies are
then stored and not enforced, as on a cluster without a network plugin that implements them).

One real node per machine: kubelet's port, the bridge and the nftables tables are host-wide.
A cluster with LLMSTAGE_CLUSTER_PORT_OFFSET set, or a second clone while another owns the node,
runs kwok-only and says so. LLMSTAGE_REAL_NODE=0 turns the node off, =1 makes its absence an
error (default `auto`: on where the machine can run containers).

The node is tainted `llmstage.io/real-node=true:NoSchedule`, so the pods of the kwok-based
tests never land on it; what should run for real tolerates the taint and selects
`llmstage.io/node: real`.

`down` stops everything in reverse and then checks that nothing is left: no process of ours, no
mount under our directories, no network namespace, nftables table, bridge, cgroup or changed
sysctl, no iptables chain or ipset of kube-router (tests/realnode/test_teardown.py runs the same
check).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from clusterlib import (
    LOGS,
    PIDS,
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

from realnode import netpol
from realnode.config import (
    BASELINE,
    BRIDGE,
    CLUSTER_DNS,
    COMPONENTS,
    CONTAINERD_SOCK,
    DEBS,
    HERE,
    NETPOL_DEBS,
    NETPOL_GROUPS,
    NODE_GROUPS,
    NODE_IP,
    NODE_LABEL,
    NODE_NAME,
    NODE_STATE,
    OWNER,
    REGISTRY,
    REGISTRY_PORT,
    REGISTRY_SERVICE,
    REPO,
    RUN,
    SHIM_SOCKETS,
    STATE,
    SYSCTLS,
    TAINT_KEY,
    VOLUMES,
    cni_config,
    command_for,
    components,
    ensure_node_pki,
    netpol_enabled,
    tool,
    write,
)
from realnode.host import (
    cgroup_dirs,
    crictl,
    ensure_bridge,
    host_snapshot,
    kill_leftovers,
    leftovers,
    mounts_under,
    remove_cgroup_tree,
    remove_new_nft_tables,
    set_sysctl,
    unmount_under,
)

# What hack/cluster.py, hack/demo.py and the real-node tests use.
__all__ = [
    "BASELINE", "BRIDGE", "NODE_IP", "NODE_LABEL", "NODE_NAME", "NODE_STATE", "REGISTRY",
    "REGISTRY_SERVICE", "RUN", "TAINT_KEY", "cannot_run_reason", "crictl", "down", "ensure_node_pki",
    "kwok_only_reason", "leftovers", "mounts_under", "present", "status", "status_ok", "up", "wanted",
]  # fmt: skip

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


def kwok_only_reason() -> str | None:
    """Why this clone's cluster has kwok nodes only, or None when it should have the real node.

    The one place that decides it: `cluster.py up` logs this reason and the real-node tests skip
    with it, so the two never disagree.
    """
    if os.environ.get("LLMSTAGE_REAL_NODE", "auto") == "0":
        return "LLMSTAGE_REAL_NODE=0"
    why = cannot_run_reason()
    if why is None and offset():
        why = "LLMSTAGE_CLUSTER_PORT_OFFSET is set: the machine's one real node is the default cluster's"
    if why is None and owned_by_other():
        why = f"another clone's cluster owns this machine's real node ({OWNER.read_text().strip()})"
    return why


def wanted() -> bool:
    """Whether this cluster should have the real node; fails when it is required and cannot."""
    why = kwok_only_reason()
    if why is None:
        return True
    if os.environ.get("LLMSTAGE_REAL_NODE", "auto") == "1":
        fail(f"LLMSTAGE_REAL_NODE=1 but the real node cannot run here: {why}")
    log(f"no real node: {why}; the cluster has kwok nodes only (nothing runs in a container)")
    return False


def owned_by_other() -> bool:
    return OWNER.exists() and OWNER.read_text().strip() != str(STATE)


def present() -> bool:
    """The real node runs (or its pieces do) for this clone's cluster."""
    return OWNER.exists() and not owned_by_other()


# ---------------------------------------------------------------- up


def build_tools() -> None:
    t0 = time.monotonic()
    groups = NODE_GROUPS + (NETPOL_GROUPS if netpol_enabled() else [])
    res = subprocess.run([str(REPO / "hack" / "tools" / "build.sh"), *groups])
    if res.returncode != 0:
        fail("building the real node's tools failed (output above)")
    dt = time.monotonic() - t0
    if dt > 5:
        log(f"real node tools built in {dt:.0f}s")


def ensure_debs() -> None:
    debs = DEBS + (NETPOL_DEBS if netpol_enabled() else [])
    res = subprocess.run(["bash", "-c", f"source {REPO}/hack/lib/debs.sh && ensure_debs {' '.join(debs)}"])
    if res.returncode != 0:
        fail("installing the real node's Debian packages failed")


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
    pushed = push_images()
    start_component("containerd")
    wait_for("containerd's socket", CONTAINERD_SOCK.exists, 60)
    evict_stale_images(pushed)  # containerd keeps its images from one start to the next
    start_component("kubelet")
    start_component("kube-proxy")
    start_component("volumes.py")
    wait_for(f"node {NODE_NAME} Ready", node_ready, 180, interval=0.5)
    apply_addons()
    if netpol_enabled():
        start_netpol()
    wait_for("CoreDNS Available", coredns_available, 180, interval=0.5)
    started = [c for c in components() if c not in ("registry", "volumes.py")]
    log(f"real node {NODE_NAME} up in {time.monotonic() - t0:.1f}s ({', '.join(started)}, CoreDNS)")


def start_component(name: str) -> None:
    argv, env = command_for(name)
    start_process(name, argv, env)


def start_netpol() -> None:
    """kube-router's network-policy controller, once the node is registered: it reads its own Node
    at start (whose InternalIP tells which pods are local) and exits when there is none."""
    kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=llmstage-testbed",
        "-f", str(HERE / "kube-router.yaml"),
    )  # fmt: skip
    start_component("kube-router")

    pid = int((PIDS / "kube-router.pid").read_text())

    def chains_hooked() -> bool:
        # By pid, not pid_of(): right after the fork /proc/PID/cmdline can still be Python's.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            fail(f"kube-router exited (log: {LOGS / 'kube-router.log'})")
        return netpol.hooked(netpol.filter_table())

    wait_for("kube-router's chains in the filter table", chains_hooked, 120, interval=0.5)


def push_images() -> dict[str, dict[str, str]]:
    """The images the node itself needs (pause, CoreDNS), the Ollama image and model, and the
    gateway every serving pod runs. vLLM's CPU image (7 GB) is pushed by push_test_images."""
    pushed = push(["pause", "coredns", "ollama", "gateway"], "the real node's images")
    res = subprocess.run(
        [
            sys.executable,
            str(REPO / "hack" / "images.py"),
            "model",
            "--registry",
            REGISTRY,
        ]
    )
    if res.returncode != 0:
        fail("pushing the model to the local registry failed (output above)")
    return pushed


# What tests/realnode and `make demo` run on the node besides push_images(): the operator image
# (the chart's pod), the client pods' image, vLLM's CPU image and the model in Hugging Face format.
TEST_IMAGES = ("llmstage", "client", "vllm-cpu", "smollm2-hf")


def push_test_images() -> None:
    t0 = time.monotonic()
    evict_stale_images(push(list(TEST_IMAGES), "the real-node tier's images"))
    log(f"the real-node tier's images are in the registry ({time.monotonic() - t0:.0f} s)")


def push(names: list[str], what: str) -> dict[str, dict[str, str]]:
    """hack/images.py push (builds what the cache lacks): name -> reference, digest."""
    res = subprocess.run(
        [sys.executable, str(REPO / "hack" / "images.py"), "push", "--registry", REGISTRY, "--json", *names],
        stdout=subprocess.PIPE,
        text=True,
    )
    if res.returncode != 0:
        fail(f"building or pushing {what} failed (output above)")
    pushed: dict[str, dict[str, str]] = json.loads(res.stdout)
    return pushed


def stale_images(listing: dict[str, Any], pushed: dict[str, dict[str, str]]) -> list[str]:
    """IDs of the node's images that carry a pushed image's name but not its digest. Images pushed
    under the names the operator renders (ollama/ollama, vllm/vllm-openai-cpu, ...) keep their tag
    when their content changes, and pods pull IfNotPresent: the node would run its old copy."""
    stale = []
    for image in listing.get("images") or []:
        tags, digests = set(image.get("repoTags") or []), image.get("repoDigests") or []
        for ref in pushed.values():
            path = ref["reference"].split("/", 1)[1]  # without the registry's host
            names = {ref["reference"], f"docker.io/{path}", f"registry.k8s.io/{path}"}
            if tags & names and not any(d.endswith("@" + ref["digest"]) for d in digests):
                stale.append(image["id"])
    return stale


def evict_stale_images(pushed: dict[str, dict[str, str]]) -> None:
    res = crictl("images", "-o", "json")
    if res.returncode != 0:
        log(f"crictl images failed ({res.returncode}): {res.stderr.strip()[-300:]}")
        return
    for image_id in stale_images(json.loads(res.stdout), pushed):
        done = crictl("rmi", image_id)
        # In use by a running container: it stays until that pod goes (a warning, not a failure).
        log(
            f"removed the node's stale copy {image_id[:19]}"
            if done.returncode == 0
            else f"could not remove the node's stale copy {image_id[:19]}: {done.stderr.strip()[-200:]}"
        )


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
    # The kubelet first, or it would start again what is removed below; kube-router next, or it
    # would resync its rules for every pod removed below.
    stop_process("kubelet")
    stop_process("kube-router")
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
    # Before the nftables tables: that leaves iptables-nft's `ip filter` empty, and so removed.
    netpol.remove(baseline)
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
        "no process, mount, netns, nftables table, iptables chain, ipset or cgroup left"
    )


def status_ok() -> bool:
    return all(pid_of(n) for n in components()) and node_ready()


def status() -> bool:
    ok = True
    for name in components():
        running = bool(pid_of(name))
        ok &= running
        print(f"{name:26} {'running' if running else 'stopped'}  pid={pid_of(name) or '-'}")
    return ok
