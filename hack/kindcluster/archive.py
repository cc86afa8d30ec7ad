"""Docker image archives (`docker save`'s format, v1.2) written from the OCI layouts hack/images.py
keeps in its cache: what `docker load`, `kind load image-archive` (containerd's import) and
`kind build node-image` read. Several images go in one archive, blobs shared; the layers stay
gzip-compressed (both readers detect it). Standard library only.

kind build node-image learns which images an archive holds from the first entry named
`repositories` or `manifest.json` (pkg/build/nodeimage/internal/container/docker/archive.go:
GetArchiveTags), and of manifest.json it reads only the first image, so `repositories`, listing
every image, comes first; names are fully qualified (docker.io/..., registry.k8s.io/...), as kind
compares them with what kubeadm and its own manifests name, or it tries to pull the image."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from images import Layout


def qualified(ref: str) -> str:
    """docker.io/library/ for a bare name, docker.io/ for a name without a registry host."""
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    if "." in first or ":" in first or first == "localhost":
        return ref
    return f"docker.io/{ref}"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def write(out: IO[bytes], images: Iterable[tuple[Path, list[str]]]) -> list[str]:
    """Write one archive of the OCI layouts at the given paths, each under its references; returns
    the references written (qualified)."""
    entries, repositories, written = [], {}, []  # type: ignore[var-annotated]
    layouts = [(Layout(path), [qualified(r) for r in refs]) for path, refs in images]
    for layout, refs in layouts:
        manifest, cfg_desc = layout.manifest(), layout.manifest()["config"]
        image_id = cfg_desc["digest"].removeprefix("sha256:")
        entries.append(
            {
                "Config": f"{image_id}.json",
                "RepoTags": refs,
                "Layers": [f"{d['digest'].removeprefix('sha256:')}.tar.gz" for d in manifest["layers"]],
            }
        )
        for ref in refs:
            repo, tag = ref.rsplit(":", 1)
            repositories.setdefault(repo, {})[tag] = image_id
        written += refs
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "repositories", json.dumps(repositories).encode())
        _add(tar, "manifest.json", json.dumps(entries).encode())
        done: set[str] = set()
        for layout, _ in layouts:
            manifest = layout.manifest()
            blobs = [(manifest["config"], ".json")] + [(d, ".tar.gz") for d in manifest["layers"]]
            for desc, suffix in blobs:
                name = desc["digest"].removeprefix("sha256:") + suffix
                if name in done:
                    continue
                done.add(name)
                path = layout.blob_path(desc["digest"])
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
                with open(path, "rb") as f:
                    tar.addfile(info, f)
    return written
