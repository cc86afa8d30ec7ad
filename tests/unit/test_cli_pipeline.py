"""`llmstage pipeline init`: the repository it writes, each overlay's LLMService valid offline."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from llmstage.api.models import LLMService, Runtime
from llmstage.cli import main
from llmstage.resolve import resolve

REPO = Path(__file__).resolve().parents[2]
KUBECTL = REPO / ".tools" / "bin" / "kubectl"
COMMON = (
    ["README.md", "base/kustomization.yaml", "base/llmservice.yaml"]
    + [
        f"overlays/{stage}/{f}"
        for stage in ("dev", "staging", "production")
        for f in ("kustomization.yaml", "namespace.yaml")
    ]
    + ["overlays/staging/llmservice-patch.yaml", "overlays/production/llmservice-patch.yaml"]
)


def init(capsys: pytest.CaptureFixture[str], target: Path, *extra: str) -> tuple[int, str, str]:
    code = main(
        ["pipeline", "init", "--model", "llama3.1:8b", "--name", "chat", "--dir", str(target), *extra]
    )
    out = capsys.readouterr()
    return code, out.out, out.err


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def kustomize(path: Path) -> list[dict]:  # type: ignore[type-arg]
    if not KUBECTL.exists():
        pytest.skip("kubectl is not built (make tools)")
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_argocd_repository_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = init(capsys, tmp_path / "repo", "--repo-url", "https://git.example/chat.git")
    assert code == 0, err
    assert files(tmp_path / "repo") == {*COMMON, "argocd/applications.yaml", "argocd/argocd-cm-llmstage.yaml"}
    assert out.count("wrote ") == len(COMMON) + 2
    apps = [d for d in yaml.safe_load_all((tmp_path / "repo/argocd/applications.yaml").read_text()) if d]
    assert [a["metadata"]["name"] for a in apps] == ["chat-dev", "chat-staging", "chat-production"]
    for app, stage in zip(apps, ("dev", "staging", "production"), strict=True):
        assert app["spec"]["source"] == {
            "repoURL": "https://git.example/chat.git",
            "targetRevision": "main",
            "path": f"overlays/{stage}",
        }
        assert app["spec"]["destination"]["namespace"] == f"chat-{stage}"
        assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    cm = yaml.safe_load((tmp_path / "repo/argocd/argocd-cm-llmstage.yaml").read_text())
    assert "resource.customizations.health.llmstage.io_LLMService" in cm["data"]


def test_flux_repository_waits_for_health(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = init(capsys, tmp_path / "repo", "--gitops", "flux", "--repo-path", "apps/chat")
    assert code == 0
    assert files(tmp_path / "repo") == {*COMMON, "flux/gitrepository.yaml", "flux/kustomizations.yaml"}
    kustomizations = [
        d for d in yaml.safe_load_all((tmp_path / "repo/flux/kustomizations.yaml").read_text()) if d
    ]
    for k, stage in zip(kustomizations, ("dev", "staging", "production"), strict=True):
        assert k["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
        assert k["spec"]["wait"] is True and k["spec"]["prune"] is True
        assert k["spec"]["path"] == f"./apps/chat/overlays/{stage}"
        assert k["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "chat"}
    assert kustomizations[2]["spec"]["timeout"] == "30m"


def test_each_overlay_builds_the_stage_llmservice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    init(capsys, tmp_path / "repo", "--gpu", "NVIDIA-L4:2", "--users", "20")
    runtimes = {}
    for stage in ("dev", "staging", "production"):
        docs = kustomize(tmp_path / "repo" / "overlays" / stage)
        (ns,) = [d for d in docs if d["kind"] == "Namespace"]
        (svc,) = [d for d in docs if d["kind"] == "LLMService"]
        assert ns["metadata"]["name"] == svc["metadata"]["namespace"] == f"chat-{stage}"
        assert not [d for d in docs if d["kind"] == "Secret"]  # never in Git
        resolved = resolve(LLMService.from_object(svc))
        assert resolved.stage == stage
        assert (resolved.name, resolved.served_model_name) == ("chat", "llama3.1:8b")
        runtimes[stage] = resolved
    assert runtimes["dev"].runtime == runtimes["staging"].runtime == Runtime.OLLAMA
    production = runtimes["production"]
    assert production.runtime == Runtime.VLLM
    assert production.resources.gpu is not None
    assert (production.resources.gpu.count, production.resources.gpu.product) == (2, "NVIDIA-L4")
    assert production.vllm is not None and production.vllm.api_key_secret_ref is not None
    assert production.vllm.api_key_secret_ref.name == "chat-api-key"
    assert production.hugging_face_token_secret_ref is not None  # Llama is gated


def test_without_gpu_production_gets_the_fewest_that_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, err = init(capsys, tmp_path / "repo")
    patch = yaml.safe_load((tmp_path / "repo/overlays/production/llmservice-patch.yaml").read_text())
    assert patch["spec"]["resources"]["gpu"]["count"] == 1
    assert "the fewest GPUs the model fits on" in err
    assert "--repo-url not given" in err


def test_existing_files_are_not_overwritten_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(capsys, tmp_path / "repo")[0] == 0
    (tmp_path / "repo/base/llmservice.yaml").write_text("mine")
    code, _, err = init(capsys, tmp_path / "repo")
    assert code == 2 and "pass --force" in err
    assert (tmp_path / "repo/base/llmservice.yaml").read_text() == "mine"
    assert init(capsys, tmp_path / "repo", "--force")[0] == 0
    assert (tmp_path / "repo/base/llmservice.yaml").read_text() != "mine"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--name", "Chat"], "--name 'Chat': use lowercase letters"),
        (["--name", "vllm"], "not 'vllm'"),
        (["--namespace-prefix", "A_"], "--namespace-prefix 'A_'"),
        (["--model", "nope:1b"], "overlays/production: spec.model.huggingFaceId"),
        (["--gpu", "NVIDIA-H100-80GB-HBM3:3", "--model", "llama3.1:70b"], "pass --gpu PRODUCT[:COUNT]"),
    ],
)
def test_bad_options_are_one_line_errors(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"--model": "llama3.1:8b", "--name": "chat", "--dir": str(tmp_path / "repo")}
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        base[flag] = value
    code = main(["pipeline", "init", *[x for kv in base.items() for x in kv]])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("llmstage pipeline: error: ") and expected in err, err
    assert not (tmp_path / "repo").exists()
