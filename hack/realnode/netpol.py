"""The host side of the real node's NetworkPolicy enforcer, kube-router v2.1.0's network-policy
controller: what it adds to the host, how `down` removes it, and the check that nothing is left.
See hack/realnode/__init__.py.

What it adds (kube-router pkg/controllers/netpol), all in iptables' filter table (through the
host's iptables-nft: nftables table `ip filter`) and in ipsets:

- chains KUBE-ROUTER-INPUT, KUBE-ROUTER-FORWARD, KUBE-ROUTER-OUTPUT, each jumped to from rule 1
  of the built-in chain of the same name (comment "kube-router netpol - <hash>");
- KUBE-NWPLCY-DEFAULT, one KUBE-NWPLCY-<hash> per NetworkPolicy and one KUBE-POD-FW-<hash> per
  pod on the node (renamed at every sync);
- ipsets KUBE-SRC-<hash> and KUBE-DST-<hash> (hash:ip and hash:net), and TMP-<hash> sets that
  live only during an `ipset restore` unless the process dies in it.

Its own cleanup, `kube-router --cleanup-config`, is not used: at v2.1.0 it builds an empty
NetworkPolicyController (pkg/cmd/kube-router.go CleanupConfigAndExit), whose iptables and ipset
handlers are nil maps, so it removes none of the above; and it also runs the service proxy's
cleanup, which flushes every IPVS service on the host ("we assume that we own all of them").
`remove` deletes exactly what is listed above instead.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess

from clusterlib import run

# Chain and set names of kube-router's network-policy controller (netpol/network_policy_controller.go
# constants; the temporary sets: pkg/utils/ipset.go tmpIPSetPrefix + base32 of 10 bytes).
CHAIN = re.compile(r"^(KUBE-ROUTER-(INPUT|FORWARD|OUTPUT)|KUBE-NWPLCY-[A-Z0-9]+|KUBE-POD-FW-[A-Z0-9]+)$")
IPSET = re.compile(r"^(KUBE-SRC-[A-Z0-9]+|KUBE-DST-[A-Z0-9]+|TMP-[A-Z2-7]{16})$")
TOP_LEVEL = ("KUBE-ROUTER-INPUT", "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-OUTPUT")


def chains(filter_table: str) -> list[str]:
    """kube-router's chains declared in `iptables-save -t filter` output."""
    names = (line[1:].split()[0] for line in filter_table.splitlines() if line.startswith(":"))
    return [name for name in names if CHAIN.match(name)]


def jumps_from_other_chains(filter_table: str) -> list[list[str]]:
    """Rules outside kube-router's chains that jump into them, as `iptables -D` arguments
    (CHAIN RULE...): what must go before the chains can be deleted."""
    found = []
    for line in filter_table.splitlines():
        if not line.startswith("-A "):
            continue
        args = shlex.split(line)
        chain = args[1]
        target = args[args.index("-j") + 1] if "-j" in args else ""
        if not CHAIN.match(chain) and CHAIN.match(target):
            found.append(args[1:])
    return found


def hooked(filter_table: str) -> bool:
    """kube-router has set up its chains: INPUT, FORWARD and OUTPUT each jump to its own."""
    targets = {(rule[0], rule[rule.index("-j") + 1]) for rule in jumps_from_other_chains(filter_table)}
    return all((chain.removeprefix("KUBE-ROUTER-"), chain) in targets for chain in TOP_LEVEL)


def ipsets(names: str) -> list[str]:
    """kube-router's sets in `ipset list -n` output (one name a line)."""
    return [name for name in (n.strip() for n in names.splitlines()) if IPSET.match(name)]


def filter_table() -> str:
    """`iptables-save -t filter`, or "" where iptables is not installed."""
    if not shutil.which("iptables-save"):
        return ""
    return run("iptables-save", "-t", "filter", check=False).stdout


def set_names() -> str:
    if not shutil.which("ipset"):
        return ""
    return run("ipset", "list", "-n", check=False).stdout


def snapshot() -> dict[str, list[str]]:
    """kube-router's chains and sets on the host now (part of the real node's baseline)."""
    return {"netpol_chains": sorted(chains(filter_table())), "netpol_ipsets": sorted(ipsets(set_names()))}


def remove(baseline: dict[str, object]) -> None:
    """Delete kube-router's jumps, chains and sets that were not on the host before `up`. Run after
    kube-router has stopped, or its next sync would put them back."""
    before_chains = set(baseline.get("netpol_chains", []))  # type: ignore[call-overload]
    table = filter_table()
    for rule in jumps_from_other_chains(table):
        if rule[rule.index("-j") + 1] not in before_chains:
            subprocess.run(["iptables", "-t", "filter", "-D", *rule], capture_output=True)
    ours = [c for c in chains(table) if c not in before_chains]
    # Flush all first: the chains jump to one another, and a referenced chain cannot be deleted.
    for chain in ours:
        subprocess.run(["iptables", "-t", "filter", "-F", chain], capture_output=True)
    for chain in ours:
        subprocess.run(["iptables", "-t", "filter", "-X", chain], capture_output=True)
    before_sets = set(baseline.get("netpol_ipsets", []))  # type: ignore[call-overload]
    for name in ipsets(set_names()):
        if name not in before_sets:
            subprocess.run(["ipset", "destroy", name], capture_output=True)


def leftovers(baseline: dict[str, object]) -> list[str]:
    """kube-router's chains, jumps and sets still on the host that were not there before `up`."""
    now = snapshot()
    problems = []
    for kind, what in (("netpol_chains", "iptables chain"), ("netpol_ipsets", "ipset")):
        before = set(baseline.get(kind, []))  # type: ignore[call-overload]
        problems += [f"{what} {name}" for name in now[kind] if name not in before]
    before_chains = set(baseline.get("netpol_chains", []))  # type: ignore[call-overload]
    for rule in jumps_from_other_chains(filter_table()):
        if rule[rule.index("-j") + 1] not in before_chains:
            problems.append(f"iptables rule -A {shlex.join(rule)}")
    return problems
