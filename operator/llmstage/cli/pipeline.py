"""`llmstage pipeline init`: write a GitOps repository for one LLMService, dev -> staging -> production.

From Jinja2 templates (llmstage/gitops/templates): a kustomize base with the LLMService and an
overlay per stage (its own namespace; production with a GPU and the API key Secret reference,
never the Secret itself), plus Argo CD Applications or Flux Kustomizations per stage with health
settings. Every stage's LLMService is validated like the API server and the operator would
before anything is written.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmstage.api.models import Stage
from llmstage.cli.common import (
    CliError,
    GPUChoice,
    guarded,
    parse_gpu,
    parser_for,
    positive_int,
    warn,
)
from llmstage.resolve.resolved import Resolved

EXAMPLES = """\
examples:
  llmstage pipeline init --model llama3.1:8b --name chat --dir chat-gitops
  llmstage pipeline init --model qwen2.5:7b --name qa --dir qa --gitops flux \\
      --repo-url https://github.com/acme/qa-gitops.git --gpu NVIDIA-L4:2 --users 32
  kubectl apply -k chat-gitops/overlays/dev --dry-run=server

Namespaces are NAME-dev, NAME-staging and NAME-production unless --namespace-prefix says
otherwise. Without --gpu, production gets the fewest GPUs of a common product the model fits on.
"""

TEMPLATES = "gitops/templates"
DEFAULT_REPO_URL = "https://git.example.com/REPLACE-ME.git"
STAGE_USERS = {Stage.DEV: 1, Stage.STAGING: 4}
NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def register(subparsers: Any) -> None:
    p = parser_for(subparsers, "pipeline", "GitOps repository scaffolding", __doc__, EXAMPLES)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = parser_for(
        actions, "init", "write a kustomize + Argo CD/Flux repository for one LLMService", __doc__, EXAMPLES
    )
    init.add_argument(
        "--model", required=True, metavar="M", help="Ollama tag or catalog name, e.g. llama3.1:8b"
    )
    init.add_argument("--name", required=True, metavar="N", help="LLMService name (also the Service name)")
    init.add_argument("--dir", required=True, metavar="DIR", help="directory to write (created if missing)")
    init.add_argument(
        "--gitops", choices=["argocd", "flux"], default="argocd", help="delivery tool (default: %(default)s)"
    )
    init.add_argument(
        "--hugging-face-id", metavar="ORG/MODEL", help="what vLLM serves, for models outside the catalog"
    )
    init.add_argument(
        "--users",
        type=positive_int,
        default=16,
        metavar="N",
        help="expected users in production (default: %(default)s)",
    )
    init.add_argument(
        "--gpu",
        type=parse_gpu,
        metavar="PRODUCT[:COUNT]",
        help="production GPUs per replica, e.g. NVIDIA-L4:2",
    )
    init.add_argument(
        "--api-key-secret", metavar="NAME", help="production API key Secret (default: NAME-api-key)"
    )
    init.add_argument(
        "--namespace-prefix", metavar="P", help="namespaces are P + dev|staging|production (default: NAME-)"
    )
    init.add_argument(
        "--repo-url", default=DEFAULT_REPO_URL, metavar="URL", help="Git URL Argo CD / Flux read"
    )
    init.add_argument("--revision", default="main", help="branch (default: %(default)s)")
    init.add_argument(
        "--repo-path", default="", metavar="PATH", help="DIR's path inside the repository (default: its root)"
    )
    init.add_argument("--argocd-namespace", default="argocd", metavar="NS", help="(default: %(default)s)")
    init.add_argument("--flux-namespace", default="flux-system", metavar="NS", help="(default: %(default)s)")
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    init.set_defaults(func=run)


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


# ---------------------------------------------------------------- pure: objects and files


def stage_object(config: PipelineConfig, stage: StageConfig) -> dict[str, Any]:
    """The LLMService `kubectl kustomize overlays/STAGE` produces (base merged with the patch)."""
    spec: dict[str, Any] = {
        "stage": stage.stage,
        "model": {"name": config.model},
        "expectedConcurrency": stage.users,
    }
    if config.hugging_face_id:
        spec["model"]["huggingFaceId"] = config.hugging_face_id
    if stage.gpu is not None:
        gpu: dict[str, Any] = {"count": 1 if stage.gpu.count is None else stage.gpu.count}
        if stage.gpu.product:
            gpu["product"] = stage.gpu.product
        spec["resources"] = {"gpu": gpu}
    if stage.api_key_secret:
        spec["vllm"] = {"apiKeySecretRef": {"name": stage.api_key_secret}}
    if stage.hf_token_secret:
        spec["huggingFaceTokenSecretRef"] = {"name": stage.hf_token_secret}
    return {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": config.name, "namespace": stage.namespace},
        "spec": spec,
    }


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


# ---------------------------------------------------------------- deciding the configuration


def _resolve(obj: dict[str, Any], what: str) -> Resolved:
    from llmstage.cli.common import parse_llmservice
    from llmstage.resolve import SpecError, resolve

    try:
        return resolve(parse_llmservice(obj, what))
    except SpecError as err:
        hints = {
            "spec.model.huggingFaceId": "pass --hugging-face-id ORG/MODEL",
            "spec.resources.gpu.count": "pass --gpu PRODUCT[:COUNT]",
            "spec.vllm.tensorParallelSize": "pass --gpu PRODUCT[:COUNT]",
        }
        hint = f" ({hints[err.field]})" if err.field in hints else ""
        raise CliError(f"{what}: {err}{hint}") from err


def _production_gpu(obj: dict[str, Any], asked: GPUChoice | None) -> tuple[GPUChoice, str]:
    """The GPU for production: as asked (only a product: as many as fit), else the fewest that fit."""
    from llmstage.cli.recommend import GPU_PRODUCTS, gpu_options

    if asked is not None and (asked.count is not None or asked.product is None):
        return asked, "from --gpu"
    products = (asked.product,) if asked and asked.product else GPU_PRODUCTS
    options = [o for o in gpu_options(obj, products) if o.count]
    if not options:
        if asked is not None:
            return GPUChoice(
                1, asked.product
            ), "from --gpu (the fit could not be checked or needs more than 8)"
        return GPUChoice(1, None), "one GPU of any product (the model's fit is unknown: pass --gpu)"
    best = min(options, key=lambda o: o.count or 0)  # the first product with the fewest GPUs
    return GPUChoice(best.count, best.product), "the fewest GPUs the model fits on (pass --gpu to choose)"


def build_config(args: argparse.Namespace) -> tuple[PipelineConfig, list[str]]:
    """The pipeline for these options, every stage validated; plus notes for the user."""
    from llmstage.resolve.catalog import builtin_catalog

    name = args.name
    if not NAME.match(name) or len(name) > 52 or name == "vllm":
        raise CliError(
            f"--name {name!r}: use lowercase letters, digits and '-', starting with a letter, at most 52 "
            "characters, not 'vllm' (it becomes the Service name)"
        )
    prefix = args.namespace_prefix if args.namespace_prefix is not None else f"{name}-"
    namespaces = {s: f"{prefix}{s.value}" for s in Stage}
    for stage, ns in namespaces.items():
        if not NAME.match(ns) or len(ns) > 63:
            raise CliError(
                f"--namespace-prefix {prefix!r}: namespace {ns!r} for stage {stage} is not a valid name"
            )
    repo_path = args.repo_path.strip("/")
    repo_path = f"{repo_path}/" if repo_path else ""
    entry = builtin_catalog().lookup(args.model)
    api_key = args.api_key_secret or f"{name}-api-key"
    hf_token = "hf-token" if entry is not None and entry.gated else None

    stages = [
        StageConfig(Stage.DEV.value, namespaces[Stage.DEV], STAGE_USERS[Stage.DEV], patch=False),
        StageConfig(Stage.STAGING.value, namespaces[Stage.STAGING], STAGE_USERS[Stage.STAGING], patch=True),
    ]
    draft = PipelineConfig(
        name, args.model, args.hugging_face_id, args.model, (), args.gitops, args.repo_url, args.revision,
        repo_path, args.argocd_namespace, args.flux_namespace,
    )  # fmt: skip
    production = StageConfig(
        Stage.PRODUCTION.value, namespaces[Stage.PRODUCTION], args.users, patch=True,
        gpu=GPUChoice(1, None), api_key_secret=api_key, hf_token_secret=hf_token,
    )  # fmt: skip
    gpu, why = _production_gpu(stage_object(draft, production), args.gpu)
    production = StageConfig(**{**production.__dict__, "gpu": gpu})
    notes = [f"production GPU: {gpu.count} x {gpu.product or 'any product'} per replica, {why}"]

    checked = []
    for one in [*stages, production]:
        resolved = _resolve(stage_object(draft, one), f"overlays/{one.stage}")
        for finding in resolved.warnings:
            if finding.reason != "GatedModelWithoutToken":
                notes.append(f"{one.stage}: {finding.reason}: {finding.message}")
        summary = f"{resolved.runtime.value}, {one.users} expected user{'s' if one.users != 1 else ''}"
        if one.gpu:
            summary += f", {gpu.count} x {gpu.product or 'GPU'}"
        if one.api_key_secret:
            summary += f", API key Secret `{one.api_key_secret}`"
        checked.append(StageConfig(**{**one.__dict__, "summary": summary}))
        served = resolved.served_model_name
    config = PipelineConfig(**{**draft.__dict__, "stages": tuple(checked), "served_model_name": served})
    if args.repo_url == DEFAULT_REPO_URL:
        notes.append(f"--repo-url not given: edit {DEFAULT_REPO_URL} in the {args.gitops} files")
    return config, notes


@guarded
def run(args: argparse.Namespace) -> int:
    config, notes = build_config(args)
    files = pipeline_files(config)
    root = Path(args.dir)
    if root.exists() and not root.is_dir():
        raise CliError(f"--dir {root}: exists and is not a directory")
    existing = [p for p in files if (root / p).exists()]
    if existing and not args.force:
        raise CliError(
            f"--dir {root}: {existing[0]} exists ({len(existing)} file(s) would be overwritten): "
            "pass --force or another --dir"
        )
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for rel in files:
        print(f"wrote {root / rel}")
    for note in notes:
        if ": " in note and note.split(":")[0] in {s.value for s in Stage}:
            warn(note)
        else:
            print(f"note: {note}", file=sys.stderr)
    print(
        f"next: kubectl apply -k {root}/overlays/dev --dry-run=server; see {root}/README.md", file=sys.stderr
    )
    return 0
