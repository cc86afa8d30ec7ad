"""`make cluster-down` leaves nothing behind: no process, mount, network namespace, nftables table,
bridge, cgroup or changed sysctl of the real node, no iptables chain or ipset of its
NetworkPolicy enforcer (kube-router). It stops the cluster, so it runs in a pytest
session of its own (`pytest -m teardown_last`, after the other tests in `make test`), and starts
the cluster again afterwards, so a cluster that was up stays up."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.chart import REPO
from testkit.realnode import node as realnode


@pytest.mark.teardown_last
def test_cluster_down_leaves_no_process_mount_netns_rule_or_cgroup(real_node: str, kubeconfig: Path) -> None:
    baseline = json.loads(realnode.BASELINE.read_text())
    down = subprocess.run(
        [sys.executable, str(REPO / "hack" / "cluster.py"), "down"], capture_output=True, text=True
    )
    print(down.stdout, down.stderr)
    try:
        assert down.returncode == 0, down.stderr
        # Checked again here, independently of the check `down` makes itself.
        assert realnode.leftovers(baseline) == []
        assert not Path(f"/sys/class/net/{realnode.BRIDGE}").exists()
        assert realnode.mounts_under([realnode.NODE_STATE, realnode.RUN]) == []
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert "kube-proxy" not in tables and "cni_" not in tables, tables
        if shutil.which("iptables-save"):
            rules = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True).stdout
            assert not re.search(r"KUBE-ROUTER-|KUBE-NWPLCY-|KUBE-POD-FW-", rules), rules
        if shutil.which("ipset"):
            sets = subprocess.run(["ipset", "list", "-n"], capture_output=True, text=True).stdout
            assert not re.search(r"^KUBE-(SRC|DST)-", sets, re.M), sets
    finally:
        up = subprocess.run(
            [sys.executable, str(REPO / "hack" / "cluster.py"), "up"], capture_output=True, text=True
        )
        assert up.returncode == 0, up.stdout + up.stderr
