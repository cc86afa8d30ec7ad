"""The kind node image, built here where no public registry answers: `kind build node-image --type
file` from a Kubernetes server tarball made of this repository's pinned binaries and images, on
the base image of base_image.py. Kept in the per-machine image cache as a `docker save` archive
(gzip), keyed by everything it is made of: a fresh engine loads it in a minute instead of
building it in several, and a changed pin (a tool group, an image, kind) builds it again.

The tarball (what kind's tarball builder reads, pkg/build/nodeimage/internal/kube/
builder_tarball.go): kubernetes/version, and in kubernetes/server/bin kubeadm, kubelet, kubectl
and four image archives (component_images.node_archives()). Standard library only."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import images
from kindcluster import archive, procs
from kindcluster.base_image import binary
from kindcluster.component_images import kubernetes_version, node_archives
from kindcluster.config import LOGS, STATE
from kindcluster.engine import Engine

# Bump when the way the node image is made changes in a way its inputs do not show.
RECIPE = "1"
BINARIES = [("kubeadm", "kubeadm"), ("kubelet", "kubernetes"), ("kubectl", "kubernetes")]


def base_reference() -> str:
    return f"llmstage/kind-base:{images.key('kind-base')[:12]}"


def key() -> str:
    h = hashlib.sha256(f"recipe {RECIPE} kind-node {kubernetes_version()}\n".encode())
    h.update(f"kind {images.sha256_file(images.tool('kind'))}\n".encode())
    h.update(f"base {images.key('kind-base')}\n".encode())
    for name, group in BINARIES:
        h.update(f"binary {name} {images.sha256_file(binary(group, name))}\n".encode())
    for file, entries in sorted(node_archives().items()):
        for name, refs in entries:
            h.update(f"archive {file} {name} {images.key(name)} {' '.join(refs)}\n".encode())
    return h.hexdigest()[:16]


def reference() -> str:
    return f"llmstage/kind-node:{kubernetes_version()}-{key()[:12]}"


def entry() -> Path:
    return images.CACHE / f"kind-node-{key()}"


def ensure(engine: Engine) -> str:
    """The node image in the engine: already there, loaded from the cache, or built (and cached)."""
    ref = reference()
    if engine.docker("image", "inspect", ref, check=False).returncode == 0:
        return ref
    if not (entry() / ".complete").exists():
        build(engine, ref)
        return ref
    t0 = time.monotonic()
    engine.docker("load", "--quiet", "--input", str(entry() / "image.tar.gz"))
    procs.log(f"node image {ref} loaded from the cache in {time.monotonic() - t0:.0f} s")
    return ref


def load_archive(engine: Engine, layouts: list[tuple[Path, list[str]]]) -> None:
    """`docker load` of OCI layouts from hack/images.py's cache, streamed."""
    proc = subprocess.Popen(
        engine.wrap(["docker", "load", "--quiet"]),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **engine.env()},
    )
    assert proc.stdin
    archive.write(proc.stdin, layouts)
    proc.stdin.close()
    proc.wait()
    assert proc.stderr
    err = proc.stderr.read()
    if proc.returncode != 0:
        raise procs.Fail(f"docker load failed: {err.decode()[-2000:]}")


def server_tarball(path: Path) -> None:
    """kubernetes-server-linux-amd64.tar.gz as kind's tarball builder reads it."""
    version = kubernetes_version().encode()
    with gzip.open(path, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        info = tarfile.TarInfo("kubernetes/version")
        info.size, info.mode = len(version) + 1, 0o644
        tar.addfile(info, io.BytesIO(version + b"\n"))
        for name, group in BINARIES:
            tar.add(binary(group, name), f"kubernetes/server/bin/{name}")
        for file, entries in node_archives().items():
            tmp = path.with_name(file)
            with open(tmp, "wb") as f:
                archive.write(f, [(images.ensure_built(n) / "oci", refs) for n, refs in entries])
            tar.add(tmp, f"kubernetes/server/bin/{file}")
            tmp.unlink()


def build(engine: Engine, ref: str) -> None:
    t0 = time.monotonic()
    for entries in node_archives().values():
        for name, _ in entries:
            images.ensure_built(name)
    base = base_reference()
    load_archive(engine, [(images.ensure_built("kind-base") / "oci", [base])])
    work = STATE / "tmp"
    images.remove_tree(work)
    work.mkdir(parents=True)
    tarball = work / "kubernetes-server-linux-amd64.tar.gz"
    try:
        server_tarball(tarball)
        procs.log(f"kind build node-image {ref} (base {base})")
        t1 = time.monotonic()
        # kind extracts the tarball into $TMPDIR.
        env = {**os.environ, **engine.env(), "TMPDIR": str(work)}
        res = subprocess.run(
            engine.wrap([images.tool("kind"), "build", "node-image", "--type", "file", "--base-image", base,
                         "--image", ref, str(tarball)]),
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        (LOGS / "kind-build-node-image.log").write_text(res.stdout + res.stderr)
        if res.returncode != 0:
            raise procs.Fail(f"kind build node-image failed:\n{(res.stdout + res.stderr)[-3000:]}")
        procs.log(f"kind build node-image took {time.monotonic() - t1:.0f} s")
    finally:
        images.remove_tree(work)
        engine.docker("rmi", base, check=False)
    save(engine, ref)
    procs.log(f"node image {ref} built and cached in {time.monotonic() - t0:.0f} s")


def save(engine: Engine, ref: str) -> None:
    d = entry()
    tmp = d.with_name(f"{d.name}.tmp")
    images.remove_tree(tmp)
    tmp.mkdir(parents=True)
    proc = subprocess.Popen(
        engine.wrap(["docker", "save", ref]),
        stdout=subprocess.PIPE,
        env={**os.environ, **engine.env()},
    )
    assert proc.stdout
    with gzip.open(tmp / "image.tar.gz", "wb", compresslevel=1) as gz:
        shutil.copyfileobj(proc.stdout, gz, 1 << 20)
    if proc.wait() != 0:
        raise procs.Fail(f"docker save {ref} failed")
    (tmp / "reference").write_text(ref + "\n")
    (tmp / ".complete").touch()
    images.remove_tree(d)
    tmp.rename(d)
    # One node image per machine: an older one is only disk.
    for old in images.CACHE.glob("kind-node-*"):
        if old != d and not old.name.endswith(".tmp"):
            images.remove_tree(old)
