"""The host side of the real node: the bridge, sysctls and cgroups it sets up, and everything
`down` must find and remove again (processes, mounts, nftables tables, veths; kube-router's
chains and ipsets: realnode/netpol.py), with the check that nothing is left. See
hack/realnode/__init__.py."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from pathlib import Path

from clusterlib import pid_of, run

from realnode import netpol
from realnode.config import (
    BRIDGE,
    CGROUP_ROOT,
    COMPONENTS,
    CONTAINERD_SOCK,
    NODE_IP,
    NODE_STATE,
    RUN,
    SHIM_SOCKETS,
    STATE,
    SYSCTLS,
    TOOLS,
    tool,
)


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
    """What `down` must give back: the host's nftables tables, links, netns, sysctls, and
    kube-router's chains and ipsets (none, unless something else on the host made them)."""
    nft = run("nft", "list", "tables", check=False).stdout.split("\n")
    links = run("ip", "-o", "link", "show").stdout.split("\n")
    return {
        "nft_tables": sorted(line.strip() for line in nft if line.strip()),
        "links": sorted(re.sub(r"^\d+: ", "", line).split(":")[0].split("@")[0] for line in links if line),
        "netns": sorted(os.listdir("/run/netns")) if Path("/run/netns").exists() else [],
        "sysctls": {k: read_sysctl(k) for k in SYSCTLS},
        "run_containerd": SHIM_SOCKETS.parent.exists(),
        **netpol.snapshot(),
    }


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
            b in exe
            for b in ("containerd", "runc", "kubelet", "kube-proxy", "kube-router", "registry", "coredns")
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
    problems += netpol.leftovers(baseline)
    if not baseline.get("run_containerd", True) and SHIM_SOCKETS.parent.exists():
        problems.append(f"directory {SHIM_SOCKETS.parent}")
    problems += [f"process {n} (pid file)" for n in COMPONENTS if pid_of(n)]
    return problems
