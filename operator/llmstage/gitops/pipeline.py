"""The GitOps repository `llmstage pipeline init` writes, rendered from templates/*.j2: a kustomize
base with the LLMService, an overlay per stage, and Argo CD Applications or Flux Kustomizations.

    pipeline_files(config) -> {relative path: content}      pure
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmstage.api.constants import Stage
from llmstage.api.manifest import GPUChoice, llmservice_object

TEMPLATES = "gitops/templates"


@dataclass(frozen=True)
class StageConfig:
    stage: str
    namespace: str
    users: int
    patch: bool  # the overlay patches the base LLMService
    gpu: GPUChoice | None = None
    api_key_secret: str | None = None
    hf_token_secret: str | None = None
    summary: str = ""


@dataclass(frozen=True)
class PipelineConfig:
    name: str
    model: str
    hugging_face_id: str | None
    served_model_name: str
    stages: tuple[StageConfig, ...]
    gitops: str
    repo_url: str
    revision: str
    repo_path: str  # "" or "some/dir/"
    argocd_namespace: str
    flux_namespace: str

    def stage(self, stage: Stage) -> StageConfig:
        return next(s for s in self.stages if s.stage == stage.value)


def stage_object(config: PipelineConfig, stage: StageConfig) -> dict[str, Any]:
    """The LLMService `kubectl kustomize overlays/STAGE` produces (base merged with the patch)."""
    return llmservice_object(
        name=config.name,
        namespace=stage.namespace,
        stage=stage.stage,
        model=config.model,
        users=stage.users,
        hugging_face_id=config.hugging_face_id,
        gpu=stage.gpu,
        api_key_secret=stage.api_key_secret,
        hf_token_secret=stage.hf_token_secret,
    )


def pipeline_files(config: PipelineConfig) -> dict[str, str]:
    """Relative path -> content of every file of the repository."""
    import jinja2

    from llmstage.gitops.health import argocd_cm_patch

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("llmstage", TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML and Markdown, not HTML
    )
    context = {
        **{f.name: getattr(config, f.name) for f in config.__dataclass_fields__.values()},
        "dev": config.stage(Stage.DEV),
        "staging": config.stage(Stage.STAGING),
        "production": config.stage(Stage.PRODUCTION),
    }

    def render(template: str, **extra: Any) -> str:
        return env.get_template(template).render(**context, **extra)

    files = {
        "README.md": render("README.md.j2"),
        "base/kustomization.yaml": render("base-kustomization.yaml.j2"),
        "base/llmservice.yaml": render("base-llmservice.yaml.j2"),
    }
    for stage in config.stages:
        files[f"overlays/{stage.stage}/kustomization.yaml"] = render(
            "overlay-kustomization.yaml.j2", stage=stage
        )
        files[f"overlays/{stage.stage}/namespace.yaml"] = render("overlay-namespace.yaml.j2", stage=stage)
        if stage.patch:
            files[f"overlays/{stage.stage}/llmservice-patch.yaml"] = render(
                "overlay-llmservice-patch.yaml.j2", stage=stage
            )
    if config.gitops == "argocd":
        files["argocd/applications.yaml"] = render("argocd-applications.yaml.j2")
        files["argocd/argocd-cm-llmstage.yaml"] = argocd_cm_patch(config.argocd_namespace)
    else:
        files["flux/gitrepository.yaml"] = render("flux-gitrepository.yaml.j2")
        files["flux/kustomizations.yaml"] = render("flux-kustomizations.yaml.j2")
    return files
