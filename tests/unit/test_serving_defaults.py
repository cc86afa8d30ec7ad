"""The install's serving defaults: the file format, and how they merge with an LLMService's own."""

from __future__ import annotations

from typing import Any

import pytest
from llmstage.api.defaults import DefaultsError, ServingDefaults, parse_defaults
from llmstage.api.models import LLMService
from llmstage.render.desired import desired_objects
from llmstage.resolve import resolve
from llmstage.resolve.ollama import DEFAULT_OLLAMA_IMAGE
from llmstage.resolve.platform import mirrored
from llmstage.resolve.resolved import Resolved
from llmstage.resolve.vllm import DEFAULT_VLLM_IMAGE

from testkit.api_cases import API_KEY, GPU_H100, service

PLATFORM = parse_defaults(
    """
imageRegistry: registry.internal:5000/dockerhub
imagePullSecrets: [{name: mirror-pull}]
podLabels: {sidecar.istio.io/inject: "false", team: platform}
podAnnotations: {logs.example.com/ship: "true"}
scheduling:
  nodeSelector: {pool: llm, zone: a}
  tolerations: [{key: dedicated, operator: Equal, value: llm, effect: NoSchedule}]
  priorityClassName: llm-default
gpuScheduling:
  nodeSelector: {pool: gpu}
  tolerations: [{key: gpu-pool, operator: Exists}]
  runtimeClassName: nvidia
  priorityClassName: llm-gpu
podSecurityContext: {platformAssignsIds: true}
""",
    "platform.yaml",
)


def run(defaults: ServingDefaults | None = PLATFORM, **spec: Any) -> Resolved:
    return resolve(LLMService.model_validate(service("chat", **spec)), serving_defaults=defaults)


def deployment(resolved: Resolved) -> dict[str, Any]:
    return next(o for o in desired_objects(resolved) if o["kind"] == "Deployment")


@pytest.mark.parametrize(
    ("image", "registry", "expected"),
    [
        ("vllm/vllm-openai:v0.12.0", "r.internal:5000", "r.internal:5000/vllm/vllm-openai:v0.12.0"),
        ("ollama/ollama:0.12.10", "mirror.example.com/hub/", "mirror.example.com/hub/ollama/ollama:0.12.10"),
        ("docker.io/vllm/vllm-openai:v0.12.0", "r.internal", "r.internal/vllm/vllm-openai:v0.12.0"),
        ("busybox:1.37", "r.internal", "r.internal/library/busybox:1.37"),
        ("localhost/x/y@sha256:" + "a" * 64, "r.internal", "r.internal/x/y@sha256:" + "a" * 64),
        ("vllm/vllm-openai:v0.12.0", None, "vllm/vllm-openai:v0.12.0"),
    ],
)
def test_mirrored_image(image: str, registry: str | None, expected: str) -> None:
    assert mirrored(image, registry) == expected


def test_without_defaults_nothing_changes() -> None:
    plain = run(None, stage="production", resources=GPU_H100, vllm=API_KEY)
    empty = run(ServingDefaults(), stage="production", resources=GPU_H100, vllm=API_KEY)
    assert plain == empty
    assert desired_objects(plain) == desired_objects(empty)


def test_a_gpu_pod_gets_every_default_and_the_gpu_ones_over_them() -> None:
    r = run(stage="production", resources=GPU_H100, vllm=API_KEY)
    assert r.vllm is not None and r.vllm.image == f"registry.internal:5000/dockerhub/{DEFAULT_VLLM_IMAGE}"
    pod = deployment(r)["spec"]["template"]
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"pool": "gpu", "zone": "a"}
    assert spec["runtimeClassName"] == "nvidia" and spec["priorityClassName"] == "llm-gpu"
    keys = [t.get("key") for t in spec["tolerations"]]
    assert keys == ["dedicated", "gpu-pool", "nvidia.com/gpu"]
    assert spec["imagePullSecrets"] == [{"name": "mirror-pull"}]
    assert pod["metadata"]["labels"]["team"] == "platform"
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "llmstage"
    assert pod["metadata"]["annotations"]["logs.example.com/ship"] == "true"
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for container in spec["containers"] + spec["initContainers"]:
        assert container["image"].startswith("registry.internal:5000/dockerhub/")


def test_a_cpu_pod_gets_no_gpu_scheduling() -> None:
    r = run()  # dev: Ollama on CPU
    assert r.ollama is not None
    assert r.ollama.image == f"registry.internal:5000/dockerhub/{DEFAULT_OLLAMA_IMAGE}"
    spec = deployment(r)["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"pool": "llm", "zone": "a"}
    assert "runtimeClassName" not in spec and spec["priorityClassName"] == "llm-default"
    assert [t["key"] for t in spec["tolerations"]] == ["dedicated"]


def test_the_service_wins_where_it_says_something() -> None:
    r = run(
        stage="production",
        resources=GPU_H100,
        vllm={**API_KEY, "image": "vllm/vllm-openai:v0.12.0-custom"},
        scheduling={
            "nodeSelector": {"pool": "reserved"},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"}
            ],
            "runtimeClassName": "nvidia-cdi",
            "priorityClassName": "critical",
        },
        pod={"imagePullSecrets": [{"name": "own"}, {"name": "mirror-pull"}], "labels": {"team": "search"}},
    )
    assert r.vllm is not None and r.vllm.image == "vllm/vllm-openai:v0.12.0-custom"  # as written
    assert r.scheduling.node_selector == {"pool": "reserved", "zone": "a"}
    assert r.scheduling.runtime_class_name == "nvidia-cdi"
    assert r.scheduling.priority_class_name == "critical"
    assert [t["key"] for t in r.scheduling.tolerations] == ["dedicated", "gpu-pool"]  # no repeat
    assert r.pod.image_pull_secrets == ("mirror-pull", "own")
    assert r.pod.labels == {"sidecar.istio.io/inject": "false", "team": "search"}


def test_platform_chosen_ids() -> None:
    defaults = parse_defaults("podSecurityContext: {runAsUser: 1000700000, fsGroup: 1000700001}", "f")
    security = deployment(run(defaults))["spec"]["template"]["spec"]["securityContext"]
    ids = (security["runAsUser"], security["runAsGroup"], security["fsGroup"])
    assert ids == (1000700000, 1000, 1000700001)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("podLabels: {app.kubernetes.io/part-of: x}", "podLabels must not use the prefixes"),
        ("podAnnotations: {llmstage.io/model: x}", "podAnnotations must not set"),
        ("podSecurityContext: {platformAssignsIds: true, fsGroup: 5}", "platformAssignsIds leaves"),
        ("imageRegistry: https://registry.internal", "imageRegistry"),
        ("gpuScheduling: {runtimeClass: nvidia}", "gpuScheduling.runtimeClass: unknown field"),
        ("podSecurityContext: {runAsUser: 0}", "podSecurityContext.runAsUser"),
        ("- a list", "not a mapping"),
        ("imageRegistry: [", "YAML syntax error"),
    ],
)
def test_bad_files_name_the_file_and_the_field(text: str, words: str) -> None:
    with pytest.raises(DefaultsError) as err:
        parse_defaults(text, "defaults.yaml")
    assert str(err.value).startswith("defaults.yaml: ") and words in str(err.value)
    assert "\n" not in str(err.value) and "kubectl explain" not in str(err.value)


def test_an_empty_file_is_no_defaults() -> None:
    assert parse_defaults("", "f") == ServingDefaults()


def test_render_applies_the_defaults_file(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    from llmstage.cli import main

    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("imageRegistry: r.internal\npodMonitor: {labels: {release: prom}}\n")
    example = Path(__file__).resolve().parents[2] / "examples" / "llama31-8b-production.yaml"
    assert (
        main(["render", "-f", str(example), "--defaults", str(defaults), "--pod-monitor", "-o", "json"]) == 0
    )
    items = __import__("json").loads(capsys.readouterr().out)["items"]
    deployment = next(o for o in items if o["kind"] == "Deployment")
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"r.internal/{DEFAULT_VLLM_IMAGE}"
    )
    monitor = next(o for o in items if o["kind"] == "PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    defaults.write_text("scheduling: {nodeSelektor: {a: b}}\n")
    assert main(["render", "-f", str(example), "--defaults", str(defaults)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"llmstage render: error: {defaults}: scheduling.nodeSelektor: unknown field: check the "
        "spelling (docs/install.md lists the serving defaults)\n"
    )


def test_run_refuses_a_bad_defaults_file_in_one_line(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    defaults = tmp_path / "defaults.yaml"
    defaults.write_text("podSecurityContext: {platformAssignsIds: yes, runAsUser: 1000}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "operator")
    result = subprocess.run(
        [sys.executable, "-m", "llmstage.cli", "run", "--defaults", str(defaults)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"llmstage run: --defaults {defaults}: podSecurityContext: platformAssignsIds")
