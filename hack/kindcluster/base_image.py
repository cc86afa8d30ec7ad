"""kind's base image (what `kind build node-image` starts from), made here as kind v0.33.0's
images/base/Dockerfile makes kindest/base, on a debootstrapped Debian bookworm root instead of
debian:trixie-slim, with the container runtime from this repository's pinned tool groups instead
of kind's own builds:

  kind's Dockerfile                         here
  containerd v2.3.4, runc v1.4.3            hack/tools/containerd (v2.4.2), hack/tools/runc (v1.5.3)
  crictl v1.36.0                            hack/tools/crictl (v1.37.0)
  CNI plugins v1.9.1 (host-local, loopback,  hack/tools/cni (v1.10.0), the same four
    ptp, portmap)
  containerd-fuse-overlayfs, fuse-overlayfs  left out: rootless nodes only
  nfs-common, open-iscsi                     left out: storage e2e tests of Kubernetes only

The files (systemd units, kubelet drop-ins, containerd's config, the entrypoint, /kind/bin) are
kind's own, from the module the kind tool group pins. One layer, like kind's squashed image.
Registered in hack/images.py's image table (cache, keys) by kindcluster.register_images()."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from images import PATH_ENV, REPO, DebianBase, run, sha256_file, tool, tool_module_dir

KIND_MODULE = "sigs.k8s.io/kind"
# What kind's Dockerfile installs with clean-install, less what the table above leaves out.
PACKAGES = [
    "systemd", "conntrack", "iptables", "nftables", "iproute2", "ethtool", "util-linux", "mount",
    "kmod", "libseccomp2", "pigz", "e2fsprogs", "bash", "ca-certificates", "curl", "jq", "procps",
]  # fmt: skip
# (destination, tool group, binary)
BINARIES = [
    ("usr/local/bin/containerd", "containerd", "containerd"),
    ("usr/local/bin/ctr", "containerd", "ctr"),
    ("usr/local/bin/containerd-shim-runc-v2", "containerd", "containerd-shim-runc-v2"),
    ("usr/local/sbin/runc", "runc", "runc"),
    ("usr/local/bin/crictl", "crictl", "crictl"),
    ("opt/cni/bin/host-local", "cni", "host-local"),
    ("opt/cni/bin/loopback", "cni", "loopback"),
    ("opt/cni/bin/ptp", "cni", "ptp"),
    ("opt/cni/bin/portmap", "cni", "portmap"),
]
# The systemd clean-up of kind's Dockerfile (its RUN after clean-install), relative to the root.
UNWANTED = [
    "lib/systemd/system/multi-user.target.wants/*",
    "etc/systemd/system/*.wants/*",
    "lib/systemd/system/local-fs.target.wants/*",
    "lib/systemd/system/sockets.target.wants/*udev*",
    "lib/systemd/system/sockets.target.wants/*initctl*",
    "lib/systemd/system/basic.target.wants/*",
    "lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service",
]


def kind_files() -> Path:
    return tool_module_dir("kind", KIND_MODULE) / "images" / "base" / "files"


def binary(group: str, name: str) -> Path:
    """A binary of a tool group (built if missing)."""
    return linked_dir(group) / name if group in LINKED_DIRS else tool(name, group)


# Groups linked as .tools/<group> (LINK_DIR in their group.sh), not into .tools/bin.
LINKED_DIRS = ("cni", "kind-etcd")


@functools.cache
def linked_dir(group: str) -> Path:
    run([REPO / "hack/tools/build.sh", group], stdout=sys.stderr)
    return (REPO / ".tools" / group).resolve()


class KindBase(DebianBase):
    def __init__(self) -> None:
        super().__init__(
            "kind-base",
            PACKAGES,
            [],
            "kind's base image (kindest/base) by llmstage's hack/kindcluster: Debian bookworm by "
            "debootstrap, containerd, runc, crictl and CNI plugins from pinned Go modules",
        )

    def config(self) -> dict[str, Any]:
        # As the Dockerfile's last stage: systemd checks $container; it exits on SIGRTMIN+3.
        return {
            "Env": [PATH_ENV, "container=docker"],
            "Entrypoint": ["/usr/local/bin/entrypoint", "/sbin/init"],
            "StopSignal": "SIGRTMIN+3",
        }

    def inputs(self) -> Iterable[tuple[str, bytes]]:
        yield from super().inputs()
        files = kind_files()
        for f in sorted(p for p in files.rglob("*") if p.is_file()):
            yield f"kind file {f.relative_to(files)}", f.read_bytes()
        for dest, group, name in BINARIES:
            yield f"binary {dest}", sha256_file(binary(group, name)).encode()
        yield "unwanted", "\n".join(UNWANTED).encode()

    def customize(self, root: Path) -> None:
        files = kind_files()

        def copy(src_dir: Path, dest: str, mode: int) -> None:
            target = root / dest
            target.mkdir(parents=True, exist_ok=True)
            for f in sorted(src_dir.iterdir()):
                if f.is_file():
                    shutil.copyfile(f, target / f.name)
                    (target / f.name).chmod(mode)

        # The Dockerfile's COPY lines, with their modes.
        copy(files / "usr/local/bin", "usr/local/bin", 0o755)
        copy(files / "kind", "kind", 0o644)
        copy(files / "kind/bin", "kind/bin", 0o755)
        for d in ("kind", "kind/bin"):
            (root / d).chmod(0o755)
        copy(files / "LICENSES", "LICENSES", 0o644)
        for sub in (
            "",
            "containerd",
            "default",
            "sysctl.d",
            "systemd/system",
            "systemd/system/kubelet.service.d",
        ):
            copy(files / "etc" / sub, f"etc/{sub}".rstrip("/"), 0o644)
        # Its RUN steps: services kind does not want, journald without kmsg, systemd as init.
        for pattern in UNWANTED:
            for p in root.glob(pattern):
                if p.is_file() or p.is_symlink():
                    p.unlink()
        with open(root / "etc/systemd/journald.conf", "a") as f:
            f.write("ReadKMsg=no\n")
        init = root / "usr/sbin/init"  # /sbin is /usr/sbin (merged /usr)
        init.unlink(missing_ok=True)
        init.symlink_to("/usr/lib/systemd/systemd")
        systemctl = ["systemctl", f"--root={root}"]
        run([*systemctl, "enable", "kubelet.service", "containerd.service", "undo-mount-hacks.service"],
            capture_output=True)  # fmt: skip
        run([*systemctl, "mask", "systemd-binfmt.service"], capture_output=True)
        (root / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
        for dest, group, name in BINARIES:
            (root / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(binary(group, name), root / dest)
            (root / dest).chmod(0o755)
        (root / "etc/containerd/cri-base.json").write_text(cri_base_spec() + "\n")


def cri_base_spec() -> str:
    """containerd's default OCI spec (`ctr oci spec`) with kind's two changes: the hook that mounts
    the product files, and no rlimits."""
    out = subprocess.run(
        [str(binary("containerd", "ctr")), "oci", "spec"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HOME": "/nonexistent"},
    ).stdout
    spec = json.loads(out)
    spec.setdefault("hooks", {}).setdefault("createContainer", []).append(
        {"path": "/kind/bin/mount-product-files.sh"}
    )
    spec.get("process", {}).pop("rlimits", None)
    return json.dumps(spec, indent=4)
