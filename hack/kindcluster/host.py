"""The host before `up` and after `down`: what the kind cluster could change outside its private
namespaces, what `down` puts back, and the check that nothing of it is left (tests/kind/
test_kind_teardown.py runs the same check). Standard library only.

What can leak out of the private namespaces, and how each is handled:
  - host-wide sysctls the nodes' kubelets set (config.HOST_SYSCTLS): put back;
  - cgroups under /sys/fs/cgroup/*/llmstage-kind (dockerd's --cgroup-parent; systemd and the
    kubelet in each node add theirs below): what still runs there is killed, the tree removed;
  - /lib/modules, which Docker creates on the host for kind's bind mount when it is absent:
    removed again (only if empty);
  - the engine's files (.kind/docker, the socket): removed.
Processes, mounts, links, routes and firewall rules never leave the namespaces; `leftovers()`
checks that too: no process in the private network namespace, no mount under .kind on the host,
no Docker bridge, chain or rule on the host that was not there before."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

from kindcluster import procs
from kindcluster.config import (
    BASELINE,
    CGROUP_PARENT,
    DOCKER_DATA,
    DOCKER_SOCK,
    HOST_SYSCTLS,
    LIB_MODULES,
    STATE,
)
from kindcluster.engine import DOCKERD, HOLDER, processes_in_namespace


def read_sysctl(key: str) -> str | None:
    try:
        return Path("/proc/sys", key).read_text().strip()
    except OSError:
        return None


def cgroup_dirs() -> list[Path]:
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():
        return [base / CGROUP_PARENT]
    return [d / CGROUP_PARENT for d in sorted(base.iterdir()) if d.is_dir() and not d.is_symlink()]


def host_links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return sorted(
        re.sub(r"^\d+: ", "", line).split(":")[0].split("@")[0] for line in out.splitlines() if line
    )


def snapshot() -> dict[str, object]:
    """The host as `down` must leave it. With the machine's own Docker engine its bridge and
    chains are there before `up`: only new ones count."""
    return {
        "sysctls": {k: read_sysctl(k) for k in HOST_SYSCTLS},
        "lib_modules": LIB_MODULES.exists(),
        "links": host_links(),
        "chains": kind_chains(),
        "rules": docker_rules(),
        "netns_inode": os.stat("/proc/self/ns/net").st_ino,
    }


def can_restore_sysctls() -> bool:
    """Only root writes /proc/sys. A CI runner's user with the machine's Docker engine is not root:
    there the nodes' sysctls stay, as with any kind cluster, on a machine that is thrown away."""
    return os.geteuid() == 0


def record_baseline() -> dict[str, object]:
    """The host before the first `up` (kept until a `down` that leaves nothing)."""
    if BASELINE.exists():
        return dict(json.loads(BASELINE.read_text()))
    STATE.mkdir(parents=True, exist_ok=True)
    base = snapshot()
    BASELINE.write_text(json.dumps(base, indent=2) + "\n")
    return base


def remove_cgroups() -> None:
    for root in cgroup_dirs():
        if not root.exists():
            continue
        for _ in range(3):
            for procs_file in root.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    for pid in procs_file.read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), 9)
            time.sleep(0.2)
        dirs = sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for d in [*dirs, root]:
            with contextlib.suppress(OSError):
                d.rmdir()


def restore(baseline: dict[str, object]) -> None:
    """Put back what the nodes changed on the host, remove what Docker left."""
    for key, value in dict(baseline.get("sysctls", {})).items():  # type: ignore[call-overload]
        if value is not None and read_sysctl(key) != value:
            if not can_restore_sysctls():
                procs.log(f"host sysctl {key.replace('/', '.')} is {read_sysctl(key)}, was {value}: not root")
                continue
            procs.log(f"restoring host sysctl {key.replace('/', '.')} = {value} (was {read_sysctl(key)})")
            Path("/proc/sys", key).write_text(f"{value}\n")
    if not baseline.get("lib_modules", True) and LIB_MODULES.is_dir() and not any(LIB_MODULES.iterdir()):
        LIB_MODULES.rmdir()
    remove_cgroups()


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


def _run_out(*argv: str) -> str:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True).stdout
    except OSError:  # the tool is not installed
        return ""


def kind_chains() -> list[str]:
    """Chains Docker or kind would add to the host's firewall (none may exist there), in nftables
    and in iptables (its nf_tables and its legacy backend)."""
    out = _run_out("nft", "list", "ruleset")
    found = set(re.findall(r"chain ((?:DOCKER|KIND|KUBE-KIND)[\w-]*)", out))
    for save in ("iptables-save", "iptables-legacy-save"):
        found.update(re.findall(r"^:((?:DOCKER|KIND|KUBE-KIND)[\w-]*)", _run_out(save), re.MULTILINE))
    return sorted(found)


def docker_rules() -> list[str]:
    """iptables rules that name a Docker bridge or Docker's chains, wherever they are (a rule
    Docker adds to a chain of the host's own, such as POSTROUTING, adds no chain)."""
    lines: set[str] = set()
    for save in ("iptables-save", "iptables-legacy-save"):
        lines.update(
            line
            for line in _run_out(save).splitlines()
            if line.startswith("-A ") and re.search(r"DOCKER|KIND-|docker0|br-[0-9a-f]{12}", line)
        )
    return sorted(lines)


def leftovers(baseline: dict[str, object], netns_inode: int | None) -> list[str]:
    """Everything of the kind cluster that is still on the host."""
    problems = [f"process {n} (pid file)" for n in (HOLDER, DOCKERD) if procs.pid_of(n)]
    if netns_inode:
        problems += [f"process {pid} in the private network namespace: {cmd}" for pid, cmd in
                     processes_in_namespace(netns_inode)]  # fmt: skip
    problems += [f"mount {m}" for m in mounts_under(STATE)]
    for key, value in dict(baseline.get("sysctls", {})).items():  # type: ignore[call-overload]
        if value is not None and read_sysctl(key) != value and can_restore_sysctls():
            problems.append(f"sysctl {key} is {read_sysctl(key)}, was {value}")
    problems += [f"cgroup {d}" for d in cgroup_dirs() if d.exists()]
    if not baseline.get("lib_modules", True) and LIB_MODULES.exists():
        problems.append(f"directory {LIB_MODULES}")
    before = set(baseline.get("links", []))  # type: ignore[call-overload]
    problems += [
        f"link {x}" for x in host_links() if x not in before and re.match(r"^(docker0|br-[0-9a-f]{12})$", x)
    ]
    chains_before = set(baseline.get("chains", []))  # type: ignore[call-overload]
    problems += [f"firewall chain {c}" for c in kind_chains() if c not in chains_before]
    rules_before = set(baseline.get("rules", []))  # type: ignore[call-overload]
    problems += [f"firewall rule {r}" for r in docker_rules() if r not in rules_before]
    problems += [f"file {p}" for p in (DOCKER_DATA, DOCKER_SOCK) if p.exists()]
    return problems
