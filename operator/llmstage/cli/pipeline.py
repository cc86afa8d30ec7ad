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
from pathlib import Path
from typing import Any

from llmstage.api.constants import Stage
from llmstage.api.manifest import GPUChoice, parse_llmservice
from llmstage.cli.common import (
    CliError,
    add_gpu_option,
    guarded,
    parser_for,
    positive_int,
    warn,
)
from llmstage.gitops.pipeline import PipelineConfig, StageConfig, pipeline_files, stage_object
from llmstage.resolve.resolved import Resolved
from llmstage.resolve.sizing import GPU_PRODUCTS, gpu_options

EXAMPLES = """\
examples:
  llmstage pipeline init --model llama3.1:8b --name chat --dir chat-gitops
  llmstage pipeline init --model qwen2.5:7b --name qa --dir qa --gitops flux \\
      --repo-url https://github.com/acme/qa-gitops.git --gpu NVIDIA-L4:2 --users 32
  kubectl apply -k chat-gitops/overlays/dev --dry-run=server

Namespaces are NAME-dev, NAME-staging and NAME-production unless --namespace-prefix says
otherwise. Without --gpu, production gets the fewest GPUs of a common product the model fits on.
"""

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
    add_gpu_option(init, "production GPUs per replica, e.g. NVIDIA-L4:2")
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


# ---------------------------------------------------------------- deciding the configuration


def _resolve(obj: dict[str, Any], what: str) -> Resolved:
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
