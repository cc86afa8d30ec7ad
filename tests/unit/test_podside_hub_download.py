"""llmstage.podside.hub_download, vLLM's Hugging Face download step: its main() against a stand-in
huggingface_hub (in sys.modules) and a Hugging Face cache under tmp_path; and the very text the
template renders into the init container, run the same way, so the two cannot drift.

The stand-in keeps huggingface_hub's calling conventions (the repository positional, the rest
keyword-only) and its cache rule (local_files_only: the cache or an error, never the Hub); what it
does not model is the Hub itself, which is the real-node tests' (tests/realnode/test_vllm.py).
"""

from __future__ import annotations

import fnmatch
import importlib.machinery
import json
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmstage.api.models import LLMService
from llmstage.podside import hub_download, source
from llmstage.render import render
from llmstage.resolve import resolve

from testkit.render_fixtures import CASES

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "llama31-8b-production.yaml"  # vLLM, weights from the Hub
ALLOW = ["*.json", "*.model", "*.txt", "*.tiktoken", "*.jinja", "*.py"]


@dataclass
class Hub:
    """huggingface_hub as this step sees it: the repositories' files, the adapters' ranks, and
    every call that reached the Hub (cache look-ups are not calls to the Hub)."""

    cache: Path
    files: dict[str, list[str]] = field(default_factory=dict)
    ranks: dict[str, int | None] = field(default_factory=dict)
    asked: list[tuple[str, ...]] = field(default_factory=list)
    downloads: list[dict[str, Any]] = field(default_factory=list)

    def folder(self, repo: str, revision: str | None) -> Path:
        return self.cache / repo / (revision or "main")

    def module(self) -> types.ModuleType:
        hub = self

        class HfApi:
            def list_repo_files(self, repo_id: str, *, revision: str | None = None) -> list[str]:
                hub.asked.append(("list_repo_files", repo_id, str(revision)))
                return hub.files[repo_id]

        def snapshot_download(
            repo_id: str,
            *,
            revision: str | None = None,
            local_dir: str | None = None,
            local_files_only: bool = False,
            allow_patterns: list[str] | None = None,
            ignore_patterns: list[str] | None = None,
        ) -> str:
            folder = Path(local_dir) if local_dir else hub.folder(repo_id, revision)
            if local_files_only:
                if not folder.is_dir():
                    raise FileNotFoundError(folder)  # huggingface_hub's LocalEntryNotFoundError
                return str(folder)
            hub.downloads.append(
                {
                    "repo": repo_id,
                    "revision": revision,
                    "local_dir": local_dir,
                    "allow_patterns": allow_patterns,
                    "ignore_patterns": ignore_patterns,
                }
            )
            folder.mkdir(parents=True, exist_ok=True)
            if local_dir:  # an adapter
                rank = hub.ranks[repo_id]
                config = {"peft_type": "LORA"} | ({"r": rank} if rank is not None else {})
                (folder / "adapter_config.json").write_text(json.dumps(config))
                (folder / "adapter_model.safetensors").touch()
                return str(folder)
            for name in hub.files[repo_id]:
                wanted = any(fnmatch.fnmatch(name, p) for p in allow_patterns or ["*"])
                if wanted and not any(fnmatch.fnmatch(name, p) for p in ignore_patterns or []):
                    (folder / name).parent.mkdir(parents=True, exist_ok=True)
                    (folder / name).touch()
            return str(folder)

        module = types.ModuleType("huggingface_hub")
        # importlib.util.find_spec reads the __spec__ of a module already in sys.modules.
        module.__spec__ = importlib.machinery.ModuleSpec("huggingface_hub", None)
        module.HfApi = HfApi  # type: ignore[attr-defined]
        module.snapshot_download = snapshot_download  # type: ignore[attr-defined]
        return module


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hub:
    stand_in = Hub(cache=tmp_path / "hf-cache")
    monkeypatch.setitem(sys.modules, "huggingface_hub", stand_in.module())
    for name in [n for n in os.environ if n.startswith("LLMSTAGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    return stand_in


def model_env(monkeypatch: pytest.MonkeyPatch, repo: str, revision: str | None = None) -> None:
    monkeypatch.setenv("LLMSTAGE_MODEL", repo)
    if revision is not None:
        monkeypatch.setenv("LLMSTAGE_REVISION", revision)


def lora_env(monkeypatch: pytest.MonkeyPatch, adapters: list[dict[str, Any]], limit: int = 16) -> None:
    monkeypatch.setenv("LLMSTAGE_LORA", json.dumps(adapters))
    monkeypatch.setenv("LLMSTAGE_LORA_MAX_RANK", str(limit))


def test_a_model_in_the_cache_is_not_asked_of_the_hub(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A restart: what an earlier start downloaded is used as it is, without a call to the Hub."""
    folder = hub.folder("acme/m", "abc123")
    folder.mkdir(parents=True)
    (folder / "config.json").touch()
    (folder / "model-00001-of-00002.safetensors").touch()
    model_env(monkeypatch, "acme/m", "abc123")
    hub_download.main()
    assert hub.asked == [] and hub.downloads == []
    assert capsys.readouterr().out == f"llmstage: acme/m is in the cache {folder}; the Hub is not asked\n"


@pytest.mark.parametrize("present", [["config.json"], ["model.safetensors"], []])
def test_a_cache_without_the_config_or_the_weights_downloads(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, present: list[str]
) -> None:
    """A cache folder holds a model only with its config.json and some weights (a download cut
    short leaves one without the other)."""
    folder = hub.folder("acme/m", None)
    folder.mkdir(parents=True)
    for name in present:
        (folder / name).touch()
    hub.files["acme/m"] = ["config.json", "model.safetensors"]
    model_env(monkeypatch, "acme/m")
    hub_download.main()
    assert [d["repo"] for d in hub.downloads] == ["acme/m"]


@pytest.mark.parametrize(
    ("files", "weights"),
    [
        (["config.json", "model.safetensors", "pytorch_model.bin"], "*.safetensors"),
        (["config.json", "pytorch_model.bin"], "*.bin"),
        (["config.json", "model.gguf"], "*.safetensors"),  # neither: vLLM's first choice
    ],
)
def test_a_cache_miss_downloads_the_first_weights_vllm_would_load(
    hub: Hub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    files: list[str],
    weights: str,
) -> None:
    hub.files["acme/m"] = files
    model_env(monkeypatch, "acme/m", "v1")
    hub_download.main()
    assert hub.asked == [("list_repo_files", "acme/m", "v1")]
    assert hub.downloads == [
        {
            "repo": "acme/m",
            "revision": "v1",
            "local_dir": None,
            "allow_patterns": [weights, *ALLOW],
            "ignore_patterns": ["original/**/*"],
        }
    ]
    assert capsys.readouterr().out == (
        f"llmstage: downloading acme/m ({weights}) into {os.environ['HF_HOME']}\n"
        "llmstage: acme/m is in the cache\n"
    )


def test_the_download_takes_the_config_tokenizer_and_code_files_with_the_weights(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the server needs offline, and one kind of weights only (the stand-in filters with
    fnmatch, as huggingface_hub's filter_repo_objects does)."""
    hub.files["acme/m"] = [
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "tokenizer.json",
        "tokenizer.model",
        "chat_template.jinja",
        "modeling_acme.py",
        "README.md",
        "model.gguf",
    ]
    model_env(monkeypatch, "acme/m")
    hub_download.main()
    folder = hub.folder("acme/m", None)
    assert sorted(p.name for p in folder.iterdir()) == [
        "chat_template.jinja",
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "modeling_acme.py",
        "tokenizer.json",
        "tokenizer.model",
    ]


@pytest.mark.parametrize("revision", [None, ""])
def test_no_revision_is_the_hubs_default_branch(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, revision: str | None
) -> None:
    hub.files["acme/m"] = ["config.json", "model.safetensors"]
    model_env(monkeypatch, "acme/m", revision)
    hub_download.main()
    assert hub.asked == [("list_repo_files", "acme/m", "None")]
    assert hub.downloads[0]["revision"] is None


def test_adapters_are_downloaded_into_their_folders_unless_they_are_there(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """download-lora (the weights come from elsewhere): no model is asked for, each adapter that is
    not in its folder yet is downloaded into it, one that is (its config and weights) is left."""
    there, missing = tmp_path / "lora" / "sql", tmp_path / "lora" / "support"
    there.mkdir(parents=True)
    (there / "adapter_config.json").write_text(json.dumps({"r": 8}))
    (there / "adapter_model.safetensors").touch()
    hub.ranks["acme/support"] = 16
    lora_env(
        monkeypatch,
        [
            {"repo": "acme/sql", "revision": None, "dir": str(there)},
            {"repo": "acme/support", "revision": "v2", "dir": str(missing)},
        ],
    )
    hub_download.main()
    assert hub.asked == []
    assert [(d["repo"], d["revision"], d["local_dir"]) for d in hub.downloads] == [
        ("acme/support", "v2", str(missing))
    ]
    assert capsys.readouterr().out == (
        f"llmstage: LoRA adapter acme/sql is in {there}; the Hub is not asked\n"
        f"llmstage: LoRA adapter acme/support into {missing}\n"
    )


def test_an_adapter_folder_without_its_weights_is_downloaded_again(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "lora" / "sql"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8}))
    hub.ranks["acme/sql"] = 8
    lora_env(monkeypatch, [{"repo": "acme/sql", "revision": None, "dir": str(folder)}])
    hub_download.main()
    assert [d["repo"] for d in hub.downloads] == ["acme/sql"]


def test_the_model_comes_before_the_adapters(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hub.files["acme/m"] = ["config.json", "model.safetensors"]
    hub.ranks["acme/sql"] = 8
    model_env(monkeypatch, "acme/m")
    lora_env(monkeypatch, [{"repo": "acme/sql", "revision": None, "dir": str(tmp_path / "sql")}])
    hub_download.main()
    assert [d["repo"] for d in hub.downloads] == ["acme/m", "acme/sql"]


@pytest.mark.parametrize(("rank", "limit"), [(16, 16), (None, 16), (64, 64)])
def test_an_adapter_up_to_the_rank_limit_passes(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rank: int | None, limit: int
) -> None:
    hub.ranks["acme/sql"] = rank  # None: no "r" in adapter_config.json, taken as 0
    lora_env(monkeypatch, [{"repo": "acme/sql", "revision": None, "dir": str(tmp_path / "sql")}], limit)
    hub_download.main()


def test_an_adapter_above_the_rank_limit_fails_the_step_naming_the_field(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """vLLM would refuse the adapter when a request names it, long after the pod went Ready: the
    step fails instead, with the field that raises the limit. The adapters after it are not asked."""
    hub.ranks["acme/support"] = 64
    lora_env(
        monkeypatch,
        [
            {"repo": "acme/support", "revision": "v2", "dir": str(tmp_path / "support")},
            {"repo": "acme/sql", "revision": None, "dir": str(tmp_path / "sql")},
        ],
        limit=16,
    )
    with pytest.raises(SystemExit) as exit_:
        hub_download.main()
    assert exit_.value.code == (
        "llmstage: LoRA adapter acme/support has rank 64, above vLLM's --max-lora-rank 16: "
        "set spec.lora.maxRank to at least 64"
    )
    assert [d["repo"] for d in hub.downloads] == ["acme/support"]


def test_an_image_without_huggingface_hub_fails_with_what_to_do(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # find_spec: not importable
    model_env(monkeypatch, "acme/m")
    with pytest.raises(SystemExit) as exit_:
        hub_download.main()
    assert exit_.value.code == (
        "llmstage: no huggingface_hub in this image, and vLLM serves from the cache only: "
        "use an image with vLLM's dependencies, or spec.model.source"
    )
    assert hub.asked == [] and hub.downloads == []


# The text the template renders: the module's, whatever the spec (the Hub or not, adapters or not).


def pod_specs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    specs = []
    for obj in objects:
        if obj["kind"] == "Deployment":
            specs.append(obj["spec"]["template"]["spec"])
        elif obj["kind"] == "LeaderWorkerSet":
            templates = obj["spec"]["leaderWorkerTemplate"]
            specs += [templates["leaderTemplate"]["spec"], templates["workerTemplate"]["spec"]]
    return specs


def rendered_hub_steps(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The init containers that run `python3 -c`: the Hugging Face step."""
    return [
        container
        for spec in pod_specs(objects)
        for container in spec.get("initContainers", [])
        if container["command"][:2] == ["python3", "-c"]
    ]


HUB_CASES = sorted(case for case in CASES if rendered_hub_steps(render(*CASES[case])))


def test_the_fixtures_cover_every_kind_of_hub_step() -> None:
    """The model, the model and adapters, the adapters alone (download-lora)."""
    kinds = set()
    for case in HUB_CASES:
        for step in rendered_hub_steps(render(*CASES[case])):
            names = {e["name"] for e in step["env"]}
            kinds.add((step["name"], "LLMSTAGE_MODEL" in names, "LLMSTAGE_LORA" in names))
    assert kinds == {
        ("download-model", True, False),
        ("download-model", True, True),
        ("download-lora", False, True),
    }


@pytest.mark.parametrize("case", HUB_CASES)
def test_every_rendered_hub_step_runs_the_module_text(case: str) -> None:
    for step in rendered_hub_steps(render(*CASES[case])):
        script = step["command"][-1]
        assert step["command"] == ["python3", "-c", script]
        assert script == source("hub_download.py")
        compile(script, step["name"], "exec")


def test_the_rendered_step_of_an_example_runs_with_its_environment(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """examples/llama31-8b-production.yaml through the real renderer: the init container's
    `python3 -c` text, run as the pod runs it (as __main__) with the variables it is given."""
    service = LLMService.from_object(yaml.safe_load(EXAMPLE.read_text()))
    (step,) = rendered_hub_steps(render(resolve(service)))
    env = {e["name"]: e["value"] for e in step["env"] if "value" in e}
    repo = env["LLMSTAGE_MODEL"]
    assert repo == "meta-llama/Llama-3.1-8B-Instruct" and "LLMSTAGE_LORA" not in env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # the pod's cache volume, here
    hub.files[repo] = ["config.json", "model.safetensors"]
    program = compile(step["command"][-1], step["name"], "exec")
    exec(program, {"__name__": "__main__"})
    assert [(d["repo"], d["allow_patterns"][0]) for d in hub.downloads] == [(repo, "*.safetensors")]
    assert capsys.readouterr().out.splitlines()[-1] == f"llmstage: {repo} is in the cache"
    exec(program, {"__name__": "__main__"})  # a restart: the cache, not the Hub
    assert len(hub.downloads) == 1 and len(hub.asked) == 1
    assert "the Hub is not asked" in capsys.readouterr().out
