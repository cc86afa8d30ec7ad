"""The real node's NetworkPolicy enforcer (hack/realnode/netpol.py, kube-router) without a node:
kube-router's command line, finding its chains, jumps and ipsets in what iptables-save and ipset
print, and removing exactly those at `down`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hack"))

from realnode import config, netpol  # noqa: E402

# `iptables-save -t filter` on a node where kube-router v2.1.0 enforces one policy on one pod,
# beside a chain of someone else's (DOCKER-USER) and kube-proxy's iptables-mode KUBE-FORWARD.
# Comments and rules as kube-router writes them (pkg/controllers/netpol/*.go), abridged.
FILTER_TABLE = (Path(__file__).parent / "realnode_netpol" / "iptables-save-filter.txt").read_text()
KUBE_ROUTER_CHAINS = [
    "KUBE-NWPLCY-DEFAULT",
    "KUBE-NWPLCY-ZJTWJFS5BOBNCDQ4",
    "KUBE-POD-FW-5MVQ3MPIEFVSF4XY",
    "KUBE-ROUTER-FORWARD",
    "KUBE-ROUTER-INPUT",
    "KUBE-ROUTER-OUTPUT",
]
# `ipset list -n`: kube-router's sets, a temporary set left by a kill during `ipset restore`, and
# sets of others (kube-router's routing controller's, which does not run here, and a user's).
IPSET_NAMES = """\
KUBE-SRC-FRKZ6FZFGN2ZWEEX
KUBE-DST-GE6XY7LM5C3GOX34
TMP-7GJUZ3KM4XJQYR2A
kube-router-pod-subnets
TMP-mine
blocklist
"""


def test_kube_routers_chains_are_found_and_no_other() -> None:
    assert sorted(netpol.chains(FILTER_TABLE)) == KUBE_ROUTER_CHAINS


def test_the_jumps_into_kube_routers_chains_from_other_chains_are_iptables_delete_arguments() -> None:
    def jump(chain: str, uuid: str) -> list[str]:
        return [
            chain,
            "-m",
            "comment",
            "--comment",
            f"kube-router netpol - {uuid}",
            "-j",
            f"KUBE-ROUTER-{chain}",
        ]

    assert netpol.jumps_from_other_chains(FILTER_TABLE) == [
        jump("INPUT", "4IA2OSFRMVNDXBVV"),
        jump("FORWARD", "TEMCG2JMHZYE7H7T"),
        jump("OUTPUT", "VEAAIY32XVBHCSCJ"),
    ]


def test_hooked_needs_all_three_jumps() -> None:
    assert netpol.hooked(FILTER_TABLE)
    without_output = "\n".join(line for line in FILTER_TABLE.splitlines() if not line.startswith("-A OUTPUT"))
    assert not netpol.hooked(without_output)
    # What iptables-nft prints where no table exists yet.
    assert not netpol.hooked(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    )


def test_kube_routers_ipsets_are_found_and_no_other() -> None:
    assert netpol.ipsets(IPSET_NAMES) == [
        "KUBE-SRC-FRKZ6FZFGN2ZWEEX",
        "KUBE-DST-GE6XY7LM5C3GOX34",
        "TMP-7GJUZ3KM4XJQYR2A",
    ]


class Host:
    """The host's filter table and ipsets as the iptables and ipset commands change them."""

    def __init__(self, table: str, sets: str) -> None:
        self.table, self.sets = table, sets
        self.calls: list[list[str]] = []

    def run(self, argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Host:
    fake = Host(FILTER_TABLE, IPSET_NAMES)
    monkeypatch.setattr(netpol, "filter_table", lambda: fake.table)
    monkeypatch.setattr(netpol, "set_names", lambda: fake.sets)
    monkeypatch.setattr(netpol.subprocess, "run", fake.run)
    return fake


def test_remove_deletes_the_jumps_then_flushes_then_deletes_the_chains_then_the_sets(host: Host) -> None:
    netpol.remove({})
    deletes = [c for c in host.calls if c[:4] == ["iptables", "-t", "filter", "-D"]]
    flushes = [c for c in host.calls if c[:4] == ["iptables", "-t", "filter", "-F"]]
    removed = [c for c in host.calls if c[:4] == ["iptables", "-t", "filter", "-X"]]
    destroyed = [c for c in host.calls if c[:2] == ["ipset", "destroy"]]
    assert [c[4:] for c in deletes] == netpol.jumps_from_other_chains(FILTER_TABLE)
    assert sorted(c[4] for c in flushes) == sorted(c[4] for c in removed) == KUBE_ROUTER_CHAINS
    assert [c[2] for c in destroyed] == [
        "KUBE-SRC-FRKZ6FZFGN2ZWEEX",
        "KUBE-DST-GE6XY7LM5C3GOX34",
        "TMP-7GJUZ3KM4XJQYR2A",
    ]
    # A chain is deleted only once no rule refers to it, and a set only once no rule matches it.
    order = [host.calls.index(c) for c in (*deletes, *flushes, *removed, *destroyed)]
    assert order == sorted(order)
    assert len(host.calls) == len(deletes) + len(flushes) + len(removed) + len(destroyed)


def test_remove_keeps_what_was_on_the_host_before_up(host: Host) -> None:
    netpol.remove({"netpol_chains": ["KUBE-ROUTER-INPUT"], "netpol_ipsets": ["KUBE-SRC-FRKZ6FZFGN2ZWEEX"]})
    touched = {c[4] for c in host.calls if c[0] == "iptables"}
    assert "KUBE-ROUTER-INPUT" not in touched and "INPUT" not in touched
    assert ["ipset", "destroy", "KUBE-SRC-FRKZ6FZFGN2ZWEEX"] not in host.calls


def test_leftovers_name_each_chain_set_and_jump_not_in_the_baseline(host: Host) -> None:
    problems = netpol.leftovers({"netpol_ipsets": ["TMP-7GJUZ3KM4XJQYR2A"]})
    assert "iptables chain KUBE-POD-FW-5MVQ3MPIEFVSF4XY" in problems
    assert "ipset KUBE-DST-GE6XY7LM5C3GOX34" in problems and "ipset TMP-7GJUZ3KM4XJQYR2A" not in problems
    jump = "-A FORWARD -m comment --comment 'kube-router netpol - TEMCG2JMHZYE7H7T' -j KUBE-ROUTER-FORWARD"
    assert f"iptables rule {jump}" in problems
    assert len(problems) == len(KUBE_ROUTER_CHAINS) + 2 + 3
    host.table, host.sets = "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", "blocklist\n"
    assert netpol.leftovers({}) == []


def test_kube_router_runs_its_firewall_only_as_the_real_node() -> None:
    argv = config.kube_router_argv("/x/kube-router", Path("/s/kube-router.kubeconfig"))
    flags = dict(a.removeprefix("--").split("=", 1) for a in argv[1:])
    assert argv[0] == "/x/kube-router"
    assert flags["run-firewall"] == "true"
    assert flags["run-router"] == flags["run-service-proxy"] == flags["run-loadbalancer"] == "false"
    assert flags["kubeconfig"] == "/s/kube-router.kubeconfig"
    assert flags["hostname-override"] == config.NODE_NAME
    assert flags["service-cluster-ip-range"] == config.SERVICE_CIDR
    # Its one HTTP mux also serves Go's pprof: on loopback, and no listener on every address.
    assert flags["health-port"] == "0" and flags["metrics-addr"] == "127.0.0.1"
    others = {10250, 10248, 10249, 10256, config.REGISTRY_PORT}
    assert int(flags["metrics-port"]) == config.KUBE_ROUTER_METRICS_PORT not in others


def test_kube_router_starts_after_kube_proxy_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMSTAGE_NETPOL", raising=False)
    started = config.components()
    assert started.index("kube-router") == started.index("kube-proxy") + 1
    monkeypatch.setenv("LLMSTAGE_NETPOL", "0")
    assert "kube-router" not in config.components() and "kube-proxy" in config.components()


KUBE_ROUTER = REPO / ".tools" / "bin" / "kube-router"


@pytest.mark.skipif(
    not KUBE_ROUTER.exists(),
    reason="needs .tools/bin/kube-router (built with the real node's tools: hack/tools/build.sh kube-router)",
)
def test_the_pinned_kube_router_accepts_the_command_line() -> None:
    """Every flag and value parses (pflag stops at an unknown one); --version then exits before
    kube-router would need root or the API server."""
    argv = config.kube_router_argv(str(KUBE_ROUTER), Path("/nonexistent/kubeconfig"))
    done = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "version v2.1.0" in done.stderr, done.stderr  # version.PrintVersion writes to stderr
