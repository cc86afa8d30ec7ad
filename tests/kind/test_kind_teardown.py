"""`hack/e2e_kind.py down` (the end of `make e2e-kind`) leaves nothing behind: no process of the
private engine or in its network namespace, no mount, no Docker link, firewall chain or rule on the host,
no cgroup, no host sysctl changed, no /lib/modules it created, none of the engine's files. Checked
here independently of the check `down` makes itself, against the host as `up` recorded it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.chart import REPO

sys.path.insert(0, str(REPO / "hack"))
from kindcluster import config, engine, host


@pytest.mark.kind_teardown
def test_down_leaves_no_process_mount_link_rule_cgroup_or_sysctl() -> None:
    assert config.BASELINE.exists(), "no kind cluster to take down (make e2e-kind runs this last)"
    baseline = json.loads(config.BASELINE.read_text())
    netns = engine.netns_inode()
    down = subprocess.run(
        [sys.executable, str(REPO / "hack" / "e2e_kind.py"), "down"], capture_output=True, text=True
    )
    print(down.stdout, down.stderr)
    assert down.returncode == 0, down.stderr
    assert host.leftovers(baseline, netns) == []
    # The same, looked at directly.
    ours = [str(config.DOCKER_DATA), config.DOCKER_EXEC_ROOT, str(config.DOCKER_SOCK)]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        assert not any(o in cmdline for o in ours), f"process {pid} left: {cmdline}"
    assert host.mounts_under(config.STATE) == []
    assert [d for d in host.cgroup_dirs() if d.exists()] == []
    if host.can_restore_sysctls():
        for key, value in baseline["sysctls"].items():
            assert value is None or host.read_sysctl(key) == value, key
    # No Docker or kind chain on the host that was not there before `up` (with a private engine,
    # none at all: it never touches the host's firewall).
    assert [c for c in host.kind_chains() if c not in baseline.get("chains", [])] == []
    assert [r for r in host.docker_rules() if r not in baseline.get("rules", [])] == []
    assert not config.DOCKER_DATA.exists() and not config.DOCKER_SOCK.exists()
    assert not config.BASELINE.exists()
