"""RenderCache: same objects as desired_objects, fresh dicts every time, any input change re-renders."""

from __future__ import annotations

from typing import Any

from llmstage.api.models import LLMService, Runtime
from llmstage.controller.rendercache import RenderCache
from llmstage.render.desired import desired_objects
from llmstage.resolve import resolve
from llmstage.resolve.resolved import ClusterFacts, Resolved


def resolved(generation: int = 1, **spec: Any) -> Resolved:
    body = {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": "chat", "namespace": "team", "uid": "u-1", "generation": generation},
        "spec": {"model": {"name": "llama3.1:8b"}, **spec},
    }
    return resolve(LLMService.from_object(body))


def test_a_hit_returns_what_render_returns_as_fresh_dicts() -> None:
    cache, r = RenderCache(), resolved()
    first = cache(r, ClusterFacts())
    first[0]["metadata"]["name"] = "mutated by a caller"
    second = cache(r, ClusterFacts())
    assert second == desired_objects(r, ClusterFacts())
    assert (cache.hits, cache.misses) == (1, 1)


def test_any_input_change_renders_again() -> None:
    cache = RenderCache()
    cache(resolved(), ClusterFacts())
    staging = resolved(2, stage="staging")
    assert cache(staging, ClusterFacts()) == desired_objects(staging, ClusterFacts())
    assert cache(staging, ClusterFacts(pod_monitor_crd=True)) == desired_objects(
        staging, ClusterFacts(pod_monitor_crd=True)
    )
    monitored = ClusterFacts(pod_monitor_crd=True)
    served = cache(staging, monitored, serving_runtime=Runtime.VLLM)
    assert served == desired_objects(staging, monitored, serving_runtime=Runtime.VLLM)
    assert cache.misses == 4 and cache.hits == 0


def test_forget_and_the_size_bound() -> None:
    cache = RenderCache(max_entries=1)
    r = resolved()
    cache(r, ClusterFacts())
    cache.forget(("team", "chat"))
    cache(r, ClusterFacts())
    assert cache.misses == 2
    other = resolve(
        LLMService.from_object(
            {
                "apiVersion": "llmstage.io/v1alpha1",
                "kind": "LLMService",
                "metadata": {"name": "other", "namespace": "team", "uid": "u-2", "generation": 1},
                "spec": {"model": {"name": "llama3.1:8b"}},
            }
        )
    )
    cache(other, ClusterFacts())
    cache(r, ClusterFacts())  # evicted by `other`
    assert cache.misses == 4
