"""The images a kind node runs besides its own processes, made here from pinned sources where there
is no public registry: the control plane and kube-proxy (the binaries hack/tools/kubernetes
builds for the local cluster), etcd, CoreDNS and pause at the versions kubeadm v1.37.2 asks for,
and kind's kindnetd and local-path-provisioner with its helper. Each is named exactly as
kubeadm (`kubeadm config images list`) or kind v0.33.0 (its node-image build constants and
containerd config) names it, so the node image has them under those names and nothing is pulled.

What they are built on, instead of upstream's distroless images: kube-base, Debian bookworm
minbase with iptables, nftables and conntrack (what kube-proxy and kindnetd call, as upstream's
distroless-iptables carries them) and ca-certificates; CoreDNS and pause on scratch as before.

  image (as named)                           binary
  registry.k8s.io/kube-apiserver, -controller-manager, -scheduler, kube-proxy:v1.37.2
                                             hack/tools/kubernetes, /usr/local/bin/NAME
  registry.k8s.io/etcd:3.7.0-0               hack/tools/kind-etcd (v3.7.0), /usr/local/bin/etcd
  registry.k8s.io/coredns/coredns:v1.14.6    hack/tools/coredns, /coredns with the file
                                             capability cap_net_bind_service+ep, as upstream's
                                             (kubeadm's CoreDNS binds port 53 as non-root)
  registry.k8s.io/pause:3.10.2 and :3.10     hack/images.py's pause (k8s v1.37.2's pause.c);
                                             3.10 is the sandbox image kind's containerd config names
  docker.io/kindest/kindnetd:<kind's tag>    hack/tools/kindnetd (kind v0.31.0's, see there), /bin/kindnetd
  docker.io/kindest/local-path-provisioner:<kind's tag>
                                             hack/tools/local-path-provisioner (v0.0.30)
  docker.io/kindest/local-path-helper:<kind's tag>
                                             kube-base itself (the helper pod runs sh, mkdir, rm)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from images import (
    CAP_NET_BIND_SERVICE,
    PATH_ENV,
    CoreDNSImage,
    DebianBase,
    Fail,
    Image,
    Layout,
    base_layout,
    canonical,
    layer_from_files,
    run,
    sha256_file,
    tool,
    tool_module_dir,
    tool_module_version,
)
from kindcluster.base_image import KIND_MODULE, binary, kind_files


@functools.cache
def kubernetes_version() -> str:
    return tool_module_version("kubernetes", "k8s.io/kubernetes")


@functools.cache
def kubeadm_images() -> dict[str, str]:
    """What kubeadm pulls for the cluster's version: {last path element: reference}."""
    out = run(
        [tool("kubeadm"), "config", "images", "list", "--kubernetes-version", kubernetes_version()],
        capture_output=True,
        text=True,
    ).stdout
    refs = [line.strip() for line in out.splitlines() if line.strip()]
    return {ref.rsplit("/", 1)[1].split(":")[0]: ref for ref in refs}


@functools.cache
def kind_images() -> dict[str, str]:
    """What kind's node-image build names (pkg/build/nodeimage const_*.go) and the sandbox image
    of its containerd config."""
    build = tool_module_dir("kind", KIND_MODULE) / "pkg/build/nodeimage"
    found: dict[str, str] = {}
    for const, name in (
        ("kindnetdImage", "kindnetd"),
        ("storageProvisionerImage", "local-path-provisioner"),
        ("storageHelperImage", "local-path-helper"),
    ):
        text = "".join(p.read_text() for p in sorted(build.glob("const*.go")))
        m = re.search(rf'^const {const} = "([^"]+)"', text, re.M)
        if not m:
            raise Fail(f"no {const} in kind's pkg/build/nodeimage")
        found[name] = m.group(1)
    m = re.search(r'sandbox_image = "([^"]+)"', (kind_files() / "etc/containerd/config.toml").read_text())
    if not m:
        raise Fail("no sandbox_image in kind's containerd config")
    found["sandbox"] = m.group(1)
    return found


class KubeBase(DebianBase):
    def __init__(self) -> None:
        super().__init__(
            "kube-base",
            ["ca-certificates", "iptables", "nftables", "conntrack"],
            ["bash"],
            "Debian bookworm minbase with iptables, nftables, conntrack and ca-certificates, by "
            "debootstrap: llmstage's base of the kind node's component images",
        )


class BinaryImage(Image):
    """Binaries of tool groups on kube-base, named as kubeadm or kind names the image."""

    def __init__(
        self, name: str, reference: Any, files: list[tuple[str, str, str]], config: dict[str, Any]
    ) -> None:
        self.name, self.deps, self.files, self.extra_config = name, ("kube-base",), files, config
        self.reference = reference  # a function: the references are read from kubeadm and kind

    def refs(self) -> list[str]:
        return [self.reference()]

    def tag(self, key: str) -> str:
        return str(self.reference().rsplit(":", 1)[1])

    def config(self) -> dict[str, Any]:
        return {"Env": [PATH_ENV], **self.extra_config}

    def layer_files(self) -> list[tuple[str, Path, int, list[int]]]:
        return [(dest, binary(group, name), 0o755, []) for dest, group, name in self.files]

    def inputs(self) -> Iterable[tuple[str, bytes]]:
        yield "reference", self.reference().encode()
        for dest, src, mode, _ in self.layer_files():
            yield f"file {dest} {mode:o}", sha256_file(src).encode()
        yield "config", canonical(self.config())

    def build(self, out: Path) -> None:
        base = base_layout("kube-base")
        layout = Layout(out / "oci").create()
        layers = base.base_layers()
        for desc, _, _ in layers:
            layout.link_blob(base, desc)
        desc, diff_id = layer_from_files(layout, self.layer_files())
        layers.append((desc, diff_id, f"COPY {' '.join(d for d, _, _ in self.files)}"))
        layout.write_image(layers, self.config(), self.tag(""))


class KindCoreDNS(CoreDNSImage):
    """CoreDNS as upstream's image has it: /coredns may bind port 53 as its non-root user."""

    name = "kind-coredns"

    def tag(self, key: str) -> str:
        wanted = kubeadm_images()["coredns"].rsplit(":", 1)[1]
        if wanted != super().tag(key):
            raise Fail(f"kubeadm asks for CoreDNS {wanted}, hack/tools/coredns pins {super().tag(key)}")
        return wanted

    def inputs(self) -> Iterable[tuple[str, bytes]]:
        yield from super().inputs()
        yield "file capability", b"cap_net_bind_service+ep"

    def build(self, out: Path) -> None:
        layout = Layout(out / "oci").create()
        desc, diff_id = layer_from_files(
            layout, [("coredns", tool("coredns"), 0o755, [CAP_NET_BIND_SERVICE])]
        )
        layout.write_image(
            [(desc, diff_id, "COPY coredns (hack/tools/coredns) /coredns, setcap cap_net_bind_service+ep")],
            self.config(),
            self.tag(""),
        )


def _kubeadm(name: str) -> Any:
    return lambda: kubeadm_images()[name]


def _kind(name: str) -> Any:
    return lambda: kind_images()[name]


def images() -> list[Image]:
    """The component images, for hack/images.py's table."""
    k8s = [
        BinaryImage(
            f"kind-{name}",
            _kubeadm(name),
            [(f"usr/local/bin/{name}", "kubernetes", name)],
            {"Entrypoint": [f"/usr/local/bin/{name}"]},
        )
        for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
    ]
    return [
        KubeBase(),
        *k8s,
        BinaryImage(
            "kind-etcd",
            _kubeadm("etcd"),
            [("usr/local/bin/etcd", "kind-etcd", "etcd")],
            {"Entrypoint": ["/usr/local/bin/etcd"]},
        ),
        # /bin is /usr/bin in the merged-/usr base: the file goes where the link points.
        BinaryImage(
            "kind-kindnetd",
            _kind("kindnetd"),
            [("usr/bin/kindnetd", "kindnetd", "kindnetd")],
            {"Cmd": ["/bin/kindnetd"]},
        ),
        BinaryImage(
            "kind-local-path-provisioner",
            _kind("local-path-provisioner"),
            [("usr/local/bin/local-path-provisioner", "local-path-provisioner", "local-path-provisioner")],
            {"Entrypoint": ["/usr/local/bin/local-path-provisioner"]},
        ),
        KindCoreDNS(),
    ]


def node_archives() -> dict[str, list[tuple[str, list[str]]]]:
    """The image archives of the server tarball (kubernetes/server/bin/NAME.tar): {file: [(image
    name in hack/images.py's table, references)]}. kind reads exactly these four files; the one of
    kube-apiserver carries every image that is not built with Kubernetes, so that nothing is
    pulled (see hack/kindcluster/archive.py for how kind learns their names)."""
    k, kd = kubeadm_images(), kind_images()
    return {
        "kube-apiserver.tar": [
            ("kind-kube-apiserver", [k["kube-apiserver"]]),
            ("kind-etcd", [k["etcd"]]),
            ("kind-coredns", [k["coredns"]]),
            ("pause", sorted({k["pause"], kd["sandbox"]})),
            ("kind-kindnetd", [kd["kindnetd"]]),
            ("kind-local-path-provisioner", [kd["local-path-provisioner"]]),
            ("kube-base", [kd["local-path-helper"]]),
        ],
        "kube-controller-manager.tar": [("kind-kube-controller-manager", [k["kube-controller-manager"]])],
        "kube-scheduler.tar": [("kind-kube-scheduler", [k["kube-scheduler"]])],
        "kube-proxy.tar": [("kind-kube-proxy", [k["kube-proxy"]])],
    }
