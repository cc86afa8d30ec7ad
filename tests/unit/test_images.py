"""hack/images.py without building anything: OCI layout and layer writing, the GGUF reader,
cache keys of a Dockerfile build's context, and the pins the images must agree with."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import re
import struct
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def images() -> ModuleType:
    spec = importlib.util.spec_from_file_location("images", REPO / "hack" / "images.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["images"] = module
    spec.loader.exec_module(module)
    return module


def _blob(layout_dir: Path, digest: str) -> bytes:
    return (layout_dir / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def test_layout_of_a_static_file_is_deterministic(images: ModuleType, tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF not really")
    digests = []
    for name in ("a", "b"):
        layout = images.Layout(tmp_path / name).create()
        desc, diff_id = images.layer_from_files(layout, [("/usr/bin/tool", binary, 0o755, [])])
        config = {"Entrypoint": ["/usr/bin/tool"], "User": "65532:65532"}
        digests.append(layout.write_image([(desc, diff_id, "COPY tool")], config, "v1"))
    assert digests[0] == digests[1], "same inputs, same manifest digest"

    root = tmp_path / "a"
    index = json.loads((root / "index.json").read_text())
    (mdesc,) = index["manifests"]
    assert mdesc["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    manifest_bytes = _blob(root, mdesc["digest"])
    assert hashlib.sha256(manifest_bytes).hexdigest() == mdesc["digest"].removeprefix("sha256:")
    manifest = json.loads(manifest_bytes)
    config = json.loads(_blob(root, manifest["config"]["digest"]))
    (layer,) = manifest["layers"]
    compressed = _blob(root, layer["digest"])
    assert layer["size"] == len(compressed)
    plain = gzip.decompress(compressed)
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(plain).hexdigest()}"]
    assert config["config"]["User"] == "65532:65532"
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert list(members) == ["usr", "usr/bin", "usr/bin/tool"]
        assert members["usr/bin/tool"].mode == 0o755 and members["usr/bin/tool"].uid == 0
        assert members["usr/bin/tool"].mtime == 0
        extracted = tar.extractfile("usr/bin/tool")
        assert extracted and extracted.read() == binary.read_bytes()


def test_file_capability_is_written_as_the_kernel_xattr(images: ModuleType, tmp_path: Path) -> None:
    binary = tmp_path / "coredns"
    binary.write_bytes(b"x")
    layout = images.Layout(tmp_path / "oci").create()
    desc, _ = images.layer_from_files(layout, [("coredns", binary, 0o755, [images.CAP_NET_BIND_SERVICE])])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(_blob(tmp_path / "oci", desc["digest"])))) as tar:
        member = tar.getmember("coredns")
    raw = member.pax_headers["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape")
    magic, permitted, inheritable, permitted_hi, inheritable_hi = struct.unpack("<IIIII", raw)
    assert magic == 0x02000001  # VFS_CAP_REVISION_2, effective
    assert permitted == 1 << 10 and inheritable == permitted_hi == inheritable_hi == 0


def _gguf(path: Path, template: str | None) -> None:
    def string(s: str) -> bytes:
        return struct.pack("<Q", len(s.encode())) + s.encode()

    kvs = [
        string("general.architecture") + struct.pack("<I", 8) + string("llama"),
        string("llama.context_length") + struct.pack("<I", 4) + struct.pack("<I", 8192),
        string("tokenizer.ggml.tokens")
        + struct.pack("<IIQ", 9, 8, 2)
        + string("<|im_start|>")
        + string("<|im_end|>"),
        string("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 2) + struct.pack("<ff", 0.0, 0.0),
    ]
    if template is not None:
        kvs.append(string("tokenizer.chat_template") + struct.pack("<I", 8) + string(template))
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))


def test_gguf_chat_template_is_read_past_arrays(images: ModuleType, tmp_path: Path) -> None:
    template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}"
    _gguf(tmp_path / "m.gguf", template)
    assert images.gguf_chat_template(tmp_path / "m.gguf") == template
    _gguf(tmp_path / "none.gguf", None)
    with pytest.raises(images.Fail, match=r"no tokenizer\.chat_template"):
        images.gguf_chat_template(tmp_path / "none.gguf")


def test_dockerfile_context_key_follows_the_files_it_copies(images: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "pkg" / "mod.py").write_text("A = 1\n")
    (tmp_path / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"junk")
    (tmp_path / "unrelated.txt").write_text("not in the context\n")
    img = images.DockerfileImage("t", "llmstage/t", tmp_path, ["Dockerfile", "pkg"], pip=False)

    def digest() -> str:
        h = hashlib.sha256()
        for label, data in img.inputs():
            h.update(label.encode() + data)
        return h.hexdigest()

    assert [p.name for p in img.context_files()] == ["Dockerfile", "mod.py"]
    before = digest()
    (tmp_path / "unrelated.txt").write_text("changed\n")
    (tmp_path / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"other junk")
    assert digest() == before
    (tmp_path / "pkg" / "mod.py").write_text("A = 2\n")
    assert digest() != before


def test_ollama_image_version_is_the_one_the_operator_renders(images: ModuleType) -> None:
    settings = REPO / "operator/llmstage/resolve/ollama.py"
    rendered = re.search(r'DEFAULT_OLLAMA_IMAGE = "ollama/ollama:([^"]+)"', settings.read_text())
    assert rendered
    assert images.OllamaImage().version() == rendered.group(1)


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "e2e/fake-llm/Dockerfile"])
def test_dockerfiles_keep_the_public_python_base_as_default(dockerfile: str) -> None:
    text = (REPO / dockerfile).read_text()
    assert "ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm" in text
    assert all(
        line.startswith("FROM ${PYTHON_IMAGE}") for line in text.splitlines() if line.startswith("FROM")
    )


def test_the_operator_image_is_labelled_with_its_version_and_commit(images: ModuleType) -> None:
    """The labels are build arguments, and part of the cache key: another commit is another image."""
    labels = images.provenance()
    version = re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version is not None and labels["VERSION"] == version.group(1)
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", labels["REVISION"])
    inputs = dict(images.IMAGES["llmstage"].inputs())
    assert {f"build-arg {k}": v.encode() for k, v in labels.items()}.items() <= inputs.items()


def test_only_the_result_reaches_stdout_when_a_build_runs_programs() -> None:
    """push --json and the other parsed commands: apt-get (installing debootstrap on a new machine)
    once wrote to stdout in the middle of `push --json`, and hack/realnode could not read the JSON."""
    program = f"""
import importlib.util, subprocess, sys
spec = importlib.util.spec_from_file_location("images", {str(REPO / "hack" / "images.py")!r})
images = importlib.util.module_from_spec(spec)
sys.modules["images"] = images
spec.loader.exec_module(images)
images.result_to_stdout_only()
subprocess.run(["echo", "Reading package lists..."], check=True)
images.run(["sh", "-c", "echo Setting up debootstrap"])
print('{{"pause": {{}}}}')
"""
    res = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert json.loads(res.stdout) == {"pause": {}}
    assert "Reading package lists..." in res.stderr
    assert "Setting up debootstrap" in res.stderr


def test_the_operator_images_context_holds_every_file_its_dockerfile_copies(images: ModuleType) -> None:
    """buildah gets only the listed files (and the cache key hashes only them): a lock the
    Dockerfile copies but the list leaves out (requirements/gcs.txt) would fail the build."""
    dockerfile = (REPO / "Dockerfile").read_text()
    copied = {
        src
        for line in re.findall(r"^COPY\s+(?!--from)(.+)$", dockerfile, re.MULTILINE)
        for src in line.split()[:-1]
    }
    assert "requirements/gcs.txt" in copied
    assert copied | {"Dockerfile"} == set(images.IMAGES["llmstage"].files)
