"""The real node's image bookkeeping (hack/realnode): which of the node's images are stale copies."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hack"))
import realnode  # noqa: E402  (hack/ is no package)

PUSHED = {
    "vllm-cpu": {
        "reference": "10.88.0.1:25050/vllm/vllm-openai-cpu:v0.32.0-x86_64",
        "digest": "sha256:" + "b" * 64,
    },
    "smollm2-hf": {"reference": "10.88.0.1:25050/llmstage/smollm2-hf:b0fa37", "digest": "sha256:" + "c" * 64},
}


def image(image_id: str, tag: str, digest: str) -> dict[str, object]:
    repo = tag.rsplit(":", 1)[0]
    return {"id": image_id, "repoTags": [tag], "repoDigests": [f"{repo}@{digest}"]}


def test_a_copy_under_the_mirrored_name_with_other_content_is_stale() -> None:
    listing = {
        "images": [
            # Pulled through containerd's docker.io mirror before the image was rebuilt.
            image("old", "docker.io/vllm/vllm-openai-cpu:v0.32.0-x86_64", "sha256:" + "a" * 64),
            image("current", "10.88.0.1:25050/llmstage/smollm2-hf:b0fa37", "sha256:" + "c" * 64),
            image("other", "registry.k8s.io/pause:3.10.2", "sha256:" + "d" * 64),
        ]
    }
    assert realnode.stale_images(listing, PUSHED) == ["old"]


def test_the_copy_of_what_was_pushed_stays() -> None:
    listing = {
        "images": [image("new", "docker.io/vllm/vllm-openai-cpu:v0.32.0-x86_64", "sha256:" + "b" * 64)]
    }
    assert realnode.stale_images(listing, PUSHED) == []
    assert realnode.stale_images({"images": None}, PUSHED) == []
