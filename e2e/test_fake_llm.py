"""The stand-in runtime image's program (e2e/fake-llm) and the OpenAI client example, on this
machine: the stand-in must satisfy what llmstage's pods call (Ollama CLI in the init container
and startup probe, /health, /) and what a client calls (/v1/chat/completions with the API key)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import yaml

from testkit import wait_until

HERE = Path(__file__).resolve().parent
FAKE = HERE / "fake-llm" / "fake_llm.py"
EXAMPLE = HERE.parent / "examples" / "client_openai.py"
MODEL = "llama3.1:8b"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(FAKE), *args], env={**os.environ, **env}, stderr=subprocess.DEVNULL
    )


def up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def vllm() -> Iterator[str]:
    port = free_port()
    # The vLLM Deployment's argument style (--flag=value) and its API key variable.
    proc = start(
        [
            "--model=meta-llama/Llama-3.1-8B-Instruct",
            f"--served-model-name={MODEL}",
            "--host=127.0.0.1",
            f"--port={port}",
            "--dtype=auto",
        ],
        {"VLLM_API_KEY": "secret"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: up(url + "/health"), timeout=10, what="fake vLLM up")
        yield url
    finally:
        proc.terminate()
        proc.wait()


@pytest.fixture
def ollama() -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = {"OLLAMA_HOST": f"127.0.0.1:{port}", "LLMSTAGE_MODEL": MODEL}
    proc = start(["serve"], env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: up(url + "/"), timeout=10, what="fake Ollama up")
        yield url, env
    finally:
        proc.terminate()
        proc.wait()


def ollama_cli(env: dict[str, str], *args: str) -> int:
    return subprocess.run(
        [sys.executable, str(FAKE), "--ollama-cli", *args], env={**os.environ, **env}
    ).returncode


def test_fake_vllm_serves_the_openai_api_behind_the_api_key(vllm: str) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(vllm + "/v1/chat/completions", json=body).status_code == 401
    reply = httpx.post(vllm + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer secret"})
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == "fake vllm reply to: hi"
    models = httpx.get(vllm + "/v1/models", headers={"Authorization": "Bearer secret"}).json()
    assert [m["id"] for m in models["data"]] == [MODEL]


def test_fake_ollama_answers_what_the_init_container_and_probes_call(
    ollama: tuple[str, dict[str, str]],
) -> None:
    url, env = ollama
    assert httpx.get(url + "/").text == "Ollama is running"
    assert ollama_cli(env, "list") == 0  # the init container waits for this
    assert ollama_cli(env, "show", MODEL) == 1  # not cached: the init container pulls
    assert ollama_cli(env, "pull", MODEL) == 0
    assert ollama_cli(env, "run", MODEL, "") == 0  # the startup probe
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    assert (
        httpx.post(url + "/v1/chat/completions", json=body)
        .json()["choices"][0]["message"]["content"]
        .startswith("fake ollama reply")
    )
    assert ollama_cli({"OLLAMA_HOST": f"127.0.0.1:{free_port()}"}, "list") == 1  # no server there


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("client_openai", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_client_example_differs_between_stages_only_in_the_namespace() -> None:
    example = load_example()
    urls = {stage: example.base_url(f"llm-{stage}") for stage in ("dev", "staging", "prod")}
    assert urls["dev"] == "http://llama31-8b.llm-dev.svc:8000/v1"
    assert {u.replace(f"llm-{s}", "NS") for s, u in urls.items()} == {"http://llama31-8b.NS.svc:8000/v1"}


def test_the_client_example_talks_to_both_runtimes_with_the_same_code(
    vllm: str, ollama: tuple[str, dict[str, str]]
) -> None:
    pytest.importorskip("openai", reason="the example needs `pip install openai` (not a project dependency)")
    for url, key, runtime in ((ollama[0], "", "ollama"), (vllm, "secret", "vllm")):
        res = subprocess.run(
            [sys.executable, str(EXAMPLE), "--base-url", f"{url}/v1", "hello"],
            capture_output=True,
            text=True,
            env={**os.environ, "LLM_API_KEY": key},
        )
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == f"fake {runtime} reply to: hello"


def test_the_download_step_of_the_production_example_finishes_with_the_stand_ins_hub(tmp_path: Path) -> None:
    """On kind the stand-in is vLLM's image, so its download-model init container runs llmstage's
    script against the stand-in's huggingface_hub: it must end with the model "in the cache", and
    a second start must find it there without asking the Hub."""
    rendered = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmstage.cli",
            "render",
            "-f",
            str(EXAMPLE.parent / "llama31-8b-production.yaml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")
    step = next(
        c for c in deployment["spec"]["template"]["spec"]["initContainers"] if c["name"] == "download-model"
    )
    env = {e["name"]: e.get("value", "") for e in step["env"] if "value" in e}
    env.update(HF_HOME=str(tmp_path / "hf"), HOME=str(tmp_path), PYTHONPATH=str(HERE / "fake-llm"))
    for expected in ("is in the cache", "the Hub is not asked"):
        res = subprocess.run(
            step["command"], capture_output=True, text=True, env={"PATH": os.environ["PATH"], **env}
        )
        assert res.returncode == 0, res.stderr
        assert expected in res.stdout, res.stdout
