"""The kind cluster's configuration follows what the machine needs (hack/kindcluster/config.py):
an ordinary CI runner gets plain kind, this machine's patches appear only where detected."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from testkit.chart import REPO

sys.path.insert(0, str(REPO / "hack"))
from kindcluster import config

LABELS = {"nvidia.com/gpu.present": "true"}


def test_an_ordinary_runner_gets_two_nodes_and_no_patch() -> None:
    cfg = json.loads(config.kind_config(config.Machine(), LABELS))
    assert cfg["nodes"] == [{"role": "control-plane"}, {"role": "worker", "labels": LABELS}]
    assert "kubeadmConfigPatches" not in cfg and "containerdConfigPatches" not in cfg
    assert config.Machine().builds_images is False


def test_cgroup_v1_lets_the_kubelet_start_and_a_short_bounding_set_restricts_oom_score_adj() -> None:
    machine = config.Machine(missing_caps=("SYS_RESOURCE",), cgroup_v1=True, public_registry=False)
    cfg = json.loads(config.kind_config(machine, LABELS))
    assert cfg["kubeadmConfigPatches"] == [
        "kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\nfailCgroupV1: false\n"
    ]
    assert "restrict_oom_score_adj = true" in cfg["containerdConfigPatches"][0]
    assert machine.builds_images
    assert any("runc wrapper" in line for line in machine.describe())


def test_another_missing_capability_does_not_patch_containerd() -> None:
    cfg = json.loads(config.kind_config(config.Machine(missing_caps=("SYS_TIME",)), LABELS))
    assert "containerdConfigPatches" not in cfg


def test_the_missing_capabilities_are_named_from_the_bounding_set() -> None:
    every = (1 << (int(Path("/proc/sys/kernel/cap_last_cap").read_text()) + 1)) - 1
    assert config.missing_capabilities(every) == ()
    assert config.missing_capabilities(every & ~(1 << 24)) == ("SYS_RESOURCE",)


def test_the_registry_address_is_the_kind_networks_ipv4_gateway() -> None:
    inspect = [{"IPAM": {"Config": [{"Subnet": "fc00:f853::/64", "Gateway": "fc00:f853::1"},
                                    {"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]}}]  # fmt: skip
    assert config.gateway_of(json.dumps(inspect)) == "172.18.0.1"
