"""The benchmark Job as rendered, the program it runs (without GuideLLM), and the stored result."""

from __future__ import annotations

import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from llmstage import __version__
from llmstage.api.models import Runtime, Stage
from llmstage.benchmark import sweep
from llmstage.benchmark.chart import svg_chart
from llmstage.benchmark.job import (
    DEFAULT_IMAGE,
    Options,
    Target,
    benchmark_job,
    deadline_seconds,
    default_levels,
)
from llmstage.benchmark.result import Level
from llmstage.benchmark.store import (
    CHART_KEY,
    RESULT_KEY,
    RESULT_LABEL_SELECTOR,
    StoredResultError,
    config_map,
    read_result,
    summary,
)

from testkit.benchmark_fixtures import FIXTURES, stored_result
from testkit.chart import REPO

KEYED = Target(
    "llm-prod", "chat", "uid-1", "http://chat.llm-prod.svc:8000/v1", "chat", ("chat-key", "api-key")
)
OPEN = Target("llm-dev", "smol", "uid-2", "http://smol.llm-dev.svc:8000/v1", "smollm2:135m", None)


def test_default_levels_go_one_step_beyond_what_the_stage_expects() -> None:
    assert default_levels(1) == (1, 2)
    assert default_levels(4) == (1, 2, 4, 8)
    assert default_levels(5) == (1, 2, 4, 8, 16)
    assert default_levels(25) == (1, 2, 4, 8, 16, 32, 50)
    assert default_levels(50) == (1, 2, 4, 8, 16, 32, 50)  # the article's 50 users is the top


def test_the_job_sends_the_services_key_by_reference_only() -> None:
    job = benchmark_job(KEYED, Options(levels=(1, 2)))
    text = json.dumps(job)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [
        {"name": "LLMSTAGE_API_KEY", "valueFrom": {"secretKeyRef": {"name": "chat-key", "key": "api-key"}}}
    ]
    assert "value" not in container["env"][0]
    assert "Secret" not in {o["kind"] for o in [job]} and '"data"' not in text
    assert benchmark_job(OPEN, Options(levels=(1,)))["spec"]["template"]["spec"]["containers"][0]["env"] == []


def test_the_job_drives_the_services_endpoint_at_the_levels_asked() -> None:
    job = benchmark_job(
        OPEN, Options(levels=(1, 2, 4), prompt_tokens=64, output_tokens=32, duration_seconds=10)
    )
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == [
        "--target", "http://smol.llm-dev.svc:8000/v1", "--model", "smollm2:135m", "--levels", "1,2,4",
        "--prompt-tokens", "64", "--output-tokens", "32", "--duration", "10",
    ]  # fmt: skip
    assert "--tokenizer" not in args  # the image's own, from its entrypoint
    # What the image runs: its entrypoint's arguments, then the Job's.
    parsed = sweep.parser().parse_args(["--tokenizer", "/opt/benchmark/tokenizer", *args])
    assert parsed.levels == [1, 2, 4] and parsed.duration == 10.0 and parsed.output_tokens == 32


def test_the_job_is_bounded_cleaned_up_and_owned_by_the_service() -> None:
    options = Options(levels=(1, 2, 4), duration_seconds=30)
    job = benchmark_job(OPEN, options)
    spec = job["spec"]
    assert spec["backoffLimit"] == 0  # a retried benchmark would measure twice
    assert spec["activeDeadlineSeconds"] == deadline_seconds(options) == 300 + 3 * (30 + 60)
    assert spec["ttlSecondsAfterFinished"] == 600
    assert job["metadata"]["ownerReferences"] == [
        {"apiVersion": "llmstage.io/v1alpha1", "kind": "LLMService", "name": "smol", "uid": "uid-2"}
    ]
    assert job["metadata"]["name"] == "smol-benchmark" and job["metadata"]["namespace"] == "llm-dev"


def test_the_pod_is_locked_down_and_not_one_of_the_serving_pods() -> None:
    pod = benchmark_job(OPEN, Options(levels=(1,)))["spec"]["template"]
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = spec["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    # The operator watches pods labelled app.kubernetes.io/name=llmstage as the service's own.
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "llmstage-benchmark"


def test_node_selector_and_tolerations_reach_the_pod() -> None:
    spec = benchmark_job(OPEN, Options(levels=(1,), node_selector={"a": "b"}, tolerations=("t",)))["spec"]
    assert spec["template"]["spec"]["nodeSelector"] == {"a": "b"}
    assert spec["template"]["spec"]["tolerations"] == [{"key": "t", "operator": "Exists"}]


def test_the_default_image_is_the_one_hack_images_builds_for_this_version() -> None:
    assert f"llmstage/benchmark:{__version__}" == DEFAULT_IMAGE
    sys.path.insert(0, str(REPO / "hack"))
    import images

    assert images.reference("benchmark", "HOST:1") == f"HOST:1/{DEFAULT_IMAGE}"
    dockerfile = (REPO / "images/benchmark/Dockerfile").read_text()
    # The Dockerfile's defaults (a Docker host's build) are hack/images.py's pins.
    assert f"ARG MODEL_WHEEL={images.MODEL_WHEEL}" in dockerfile
    assert f"ARG MODEL_WHEEL_SHA256={images.MODEL_WHEEL_SHA256}" in dockerfile
    assert f"ARG MODEL_GGUF={images.MODEL_GGUF}" in dockerfile
    copied = set(re.findall(r"^COPY (?:.|\n)*?(?=^\S)", dockerfile, re.M))
    copied = set(re.findall(r"operator/llmstage/[\w/]+\.py", "".join(copied)))
    assert copied == {
        "operator/llmstage/__init__.py",
        "operator/llmstage/benchmark/__init__.py",
        "operator/llmstage/benchmark/guidellm_report.py",
        "operator/llmstage/benchmark/sweep.py",
    }


def test_what_runs_in_the_image_imports_only_the_standard_library() -> None:
    """guidellm_report and sweep run beside GuideLLM, without llmstage's dependencies."""
    for module in ("guidellm_report", "sweep"):
        source = (REPO / f"operator/llmstage/benchmark/{module}.py").read_text()
        imported = set(re.findall(r"^(?:from|import) ([\w.]+)", source, re.M))
        outside = {
            m for m in imported if m.split(".")[0] not in sys.stdlib_module_names and m != "__future__"
        }
        assert outside <= {"llmstage.benchmark"}, outside
    init = (REPO / "operator/llmstage/benchmark/__init__.py").read_text()
    assert not re.search(r"^(from|import) ", init, re.M)


# ---------------------------------------------------------------- the sweep (no GuideLLM)


def sweep_args(**kw: Any) -> argparse.Namespace:
    base = {
        "guidellm": "guidellm",
        "target": "http://smol.llm-dev.svc:8000/v1",
        "model": "smollm2:135m",
        "tokenizer": "/opt/benchmark/tokenizer",
        "prompt_tokens": 64,
        "output_tokens": 32,
        "duration": 10.0,
    }
    return argparse.Namespace(**{**base, **kw})


def test_guidellm_runs_quietly_at_one_concurrency_with_its_0_3_1_options(tmp_path: Path) -> None:
    cmd = sweep.guidellm_command(sweep_args(), 4, tmp_path / "level-4.json")
    assert cmd[:3] == ["guidellm", "benchmark", "run"]
    flags = dict(zip(cmd[3::2], cmd[4::2], strict=False))
    assert flags["--rate-type"] == "concurrent" and flags["--rate"] == "4"
    assert flags["--data"] == "prompt_tokens=64,output_tokens=32,samples=1000"
    assert flags["--max-seconds"] == "10.0"
    # Its final summary prints the Authorization header: off.
    assert "--disable-console-outputs" in cmd and "--disable-progress" in cmd


def test_the_key_reaches_guidellm_as_its_setting_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSTAGE_API_KEY", "s3cret")
    env = sweep.guidellm_env("s3cret")
    assert env["GUIDELLM__OPENAI__API_KEY"] == "s3cret"
    assert "LLMSTAGE_API_KEY" not in env
    assert json.loads(env["GUIDELLM__OPENAI__MAX_OUTPUT_KEY"])["chat_completions"] == "max_tokens"
    assert env["GUIDELLM__PREFERRED_ROUTE"] == "chat_completions"
    assert env["GUIDELLM__MAX_WORKER_PROCESSES"] == "1"
    assert "GUIDELLM__OPENAI__API_KEY" not in sweep.guidellm_env(None)
    assert sweep.redact("401: Bearer s3cret refused", "s3cret") == "401: Bearer [api key] refused"


def test_a_failing_guidellm_shows_its_last_lines_without_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "guidellm"
    fake.write_text(
        '#!/bin/sh\necho "httpx.HTTPStatusError: 401 for Bearer $GUIDELLM__OPENAI__API_KEY" >&2\nexit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("LLMSTAGE_API_KEY", "s3cret")
    monkeypatch.setattr(sweep, "warm_up", lambda *a: None)
    code = sweep.main(
        ["--target", "http://x/v1", "--model", "m", "--levels", "1,2", "--tokenizer", "t",
         "--work-dir", str(tmp_path / "w"), "--guidellm", str(fake)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1 and "s3cret" not in out
    assert (
        f"{sweep.ERROR}guidellm exited 1 at 1 users: httpx.HTTPStatusError: 401 for Bearer [api key]"
        in out.splitlines()
    )
    assert sweep.RESULT not in out  # nothing measured, nothing to store


def test_the_sweep_reports_each_level_then_one_result_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GuideLLM replaced by a script that writes the fixture's real report for the level asked."""
    fake = tmp_path / "guidellm"
    fake.write_text(
        "#!/bin/sh\n"
        "while [ $# -gt 0 ]; do case $1 in --rate) r=$2;; --output-path) o=$2;; esac; shift; done\n"
        f'cp {FIXTURES}/level-$r.json "$o"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setattr(sweep, "warm_up", lambda *a: None)
    code = sweep.main(
        ["--target", "http://x/v1", "--model", "m", "--levels", "4,1", "--tokenizer", "t",
         "--work-dir", str(tmp_path / "w"), "--guidellm", str(fake)]
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert all(line.startswith((sweep.PROGRESS, sweep.RESULT)) for line in lines)
    assert lines[2].startswith(f"{sweep.PROGRESS}level 1/2: 1 concurrent user(s) for 30 s")
    assert re.match(
        rf"{sweep.PROGRESS}level 1/2: 1 user\(s\): [\d.]+ requests/s, [\d.]+ output tokens/s", lines[3]
    )
    result = json.loads(lines[-1][len(sweep.RESULT) :])
    assert [lv["concurrency"] for lv in result["levels"]] == [1, 4]


def test_levels_of_zero_are_refused_in_the_pod_too() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="each at least 1"):
        sweep.parse_levels("0,2")


# ---------------------------------------------------------------- the stored result


def test_the_config_map_round_trips_and_is_owned_by_the_service() -> None:
    result = stored_result()
    cm = config_map(result, "uid-9")
    assert cm["metadata"]["name"] == "smol-benchmark"
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "uid-9"
    assert "controller" not in cm["metadata"]["ownerReferences"][0]  # the operator does not manage it
    labels = cm["metadata"]["labels"]
    assert all(
        f"{k}={v}" in RESULT_LABEL_SELECTOR.split(",")
        for k, v in labels.items()
        if k != "app.kubernetes.io/instance"
    )
    assert read_result(cm) == result
    assert len(json.dumps(cm)) < 64 * 1024  # far below a ConfigMap's 1 MiB


def test_the_summary_is_what_status_benchmark_holds() -> None:
    from llmstage.api.status import BenchmarkSummary

    s = summary(stored_result(), "smol-benchmark")
    assert (
        s["knee"] == 1
        and s["levels"] == [1, 2, 4, 8]
        and s["runtime"] == "ollama"
        and s["stage"] == "staging"
    )
    assert s["finishedAt"] == "2026-12-06T05:42:25Z" and s["generation"] == 3
    assert BenchmarkSummary.model_validate(s).knee == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "ConfigMap smol-benchmark has no result.json"),
        ({RESULT_KEY: "{not json"}, "ConfigMap smol-benchmark result.json: Expecting property name"),
        (
            {RESULT_KEY: '{"format": 1}'},
            "ConfigMap smol-benchmark result.json: service: required field is missing",
        ),
    ],
)
def test_a_hand_edited_result_is_reported_not_half_read(data: dict[str, str], message: str) -> None:
    with pytest.raises(StoredResultError) as err:
        read_result({"metadata": {"name": "smol-benchmark"}, "data": data})
    assert str(err.value).startswith(message)


def test_the_chart_is_an_svg_of_both_curves_with_the_knee() -> None:
    cm = config_map(stored_result(), "uid-9")
    svg = cm["data"][CHART_KEY]
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "Throughput" in texts and "Latency" in texts and texts.count("knee") == 2
    assert sum(1 for _ in root.iter("{http://www.w3.org/2000/svg}polyline")) == 4
    assert any("llm-staging/smol: ollama, stage staging" in (t or "") for t in texts)
    assert svg_chart(stored_result()) == svg  # deterministic


def test_a_measured_service_keeps_runtime_and_stage_as_enums() -> None:
    result = stored_result(runtime="vllm", stage="production")
    assert result.service.runtime == Runtime.VLLM and result.service.stage == Stage.PRODUCTION
    assert Level.model_validate(result.levels[0].model_dump(mode="json", by_alias=True)) == result.levels[0]
