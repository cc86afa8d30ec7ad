#!/usr/bin/env python3
"""The operator image's SBOM, CycloneDX JSON (`make image` runs this after building the image).

    python3 hack/sbom.py [--out dist/llmstage-image.cdx.json]

The image's Python environment is exactly requirements/runtime.txt (the Dockerfile installs it
with --require-hashes --no-deps), requirements/gcs.txt (google-auth, the same way into
/opt/llmstage/fetch-gcs) and the llmstage package, so the SBOM is made from those locks by
cyclonedx-py (cyclonedx-bom from PyPI, pinned with its hashes in requirements/sbom.txt and
installed into .tools/sbom, never resolved), each component with its sha256 hashes. The subject
is the image built by hack/images.py: its reference, digest and OCI labels; llmstage and the
locked packages are its components. Not listed: the Debian packages of the base image (the local
python-base records them in dpkg-versions.txt beside its cache entry). Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements" / "sbom.txt"
RUNTIME_LOCK = REPO / "requirements" / "runtime.txt"
GCS_LOCK = REPO / "requirements" / "gcs.txt"
VENV = REPO / ".tools" / "sbom"
DEFAULT_OUT = REPO / "dist" / "llmstage-image.cdx.json"


def cyclonedx_py() -> Path:
    """cyclonedx-py in .tools/sbom, installed from the hashed lock (again when the lock changes)."""
    exe = VENV / "bin" / "cyclonedx-py"
    stamp = VENV / ".installed-from"
    want = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if exe.exists() and stamp.exists() and stamp.read_text() == want:
        return exe
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run(
        [str(VENV / "bin" / "pip"), "install", "--quiet", "--require-hashes", "--no-deps",
         "--only-binary=:all:", "-r", str(LOCK)],
        check=True,
    )  # fmt: skip
    stamp.write_text(want)
    return exe


def built_image() -> dict[str, Any]:
    """The llmstage image's cache entry: image.json (reference, digest) and its config's labels."""
    sys.path.insert(0, str(REPO / "hack"))
    import images

    entry = images.entry("llmstage")
    if not (entry / ".complete").exists():
        raise SystemExit(
            "the llmstage image is not built: python3 hack/images.py build llmstage (make image)"
        )
    meta: dict[str, Any] = json.loads((entry / "image.json").read_text())
    layout = entry / "oci"
    manifest_digest = meta["digest"].removeprefix("sha256:")
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest).read_bytes())
    config_digest = manifest["config"]["digest"].removeprefix("sha256:")
    config = json.loads((layout / "blobs" / "sha256" / config_digest).read_bytes())
    meta["labels"] = (config.get("config") or {}).get("Labels") or {}
    return meta


def sbom(image: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bom.json"
        # One requirements file: both locks hold exact pins with hashes, and no name twice.
        locks = Path(tmp) / "image-requirements.txt"
        locks.write_text(RUNTIME_LOCK.read_text() + GCS_LOCK.read_text())
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}  # its note about the graph: completed below
        pyproject = str(REPO / "pyproject.toml")
        subprocess.run(
            [str(cyclonedx_py()), "requirements", str(locks), "--pyproject", pyproject,
             "--output-reproducible", "--of", "JSON", "-o", str(out)],
            check=True, env=env,
        )  # fmt: skip
        bom: dict[str, Any] = json.loads(out.read_text())
    app = bom["metadata"]["component"]
    app["bom-ref"] = "pkg:pypi/llmstage@" + app["version"]
    app["purl"] = app["bom-ref"]
    digest = image["digest"].removeprefix("sha256:")
    labels = image["labels"]
    container = {
        "bom-ref": "image",
        "type": "container",
        "name": image["repository"],
        "version": image["tag"],
        "hashes": [{"alg": "SHA-256", "content": digest}],
        "purl": f"pkg:oci/{image['repository'].rsplit('/', 1)[-1]}@sha256%3A{digest}",
        "properties": [{"name": f"oci:label:{k}", "value": v} for k, v in sorted(labels.items())],
    }
    libraries = [c["bom-ref"] for c in bom["components"]]
    bom["metadata"]["component"] = container
    bom["components"] = [app, *bom["components"]]
    bom["dependencies"] = [
        {"ref": "image", "dependsOn": [app["bom-ref"]]},
        {"ref": app["bom-ref"], "dependsOn": libraries},
        *[{"ref": ref} for ref in libraries],
    ]
    return bom


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where to write it (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    image = built_image()
    bom = sbom(image)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(bom, indent=2) + "\n")
    print(
        f"{args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}: "
        f"{image['repository']}:{image['tag']} ({image['digest'][:19]}), {len(bom['components'])} components"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
