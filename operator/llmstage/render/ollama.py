"""The Ollama Deployment: context for templates/ollama-deployment.yaml.j2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmstage import ollama_name
from llmstage.api.models import MANAGED_OLLAMA_ENV, Runtime
from llmstage.render import pod as podlib
from llmstage.render.workload import PodContext, pod_context, render_template
from llmstage.resolve.resolved import ConfigMapKeyRef, OllamaSettings, Resolved, SecretKeyRef

TEMPLATE = "ollama-deployment.yaml.j2"

# Variables the template always sets (and LLMSTAGE_*); spec.ollama.env cannot override them: the CRD
# rejects them, and a HOME there would break the pull and the probes.
RESERVED_ENV = frozenset(MANAGED_OLLAMA_ENV)
# The pull step sets these too: spec.ollama.env may set them for the server only.
PULL_OWN_ENV = {"NVIDIA_VISIBLE_DEVICES", "SSL_CERT_FILE"}
HOME = "/home/ollama"
UID = 1000  # and GID and fsGroup (see the template's top)
# The registry's CA bundle (spec.ollama.registry.caConfigMapRef), read through SSL_CERT_FILE.
REGISTRY_CA_DIR = "/etc/llmstage/registry-ca"
# Written by the server container's loader once the model is in memory; the startup probe reads it.
LOADED_MARKER = "/tmp/llmstage-model-loaded"
# Defaults the template sets unless spec.ollama.env sets them: OLLAMA_MAX_LOADED_MODELS and
# NVIDIA_VISIBLE_DEVICES (see the template for why each has its default).


# Loading from the cache PVC into memory; the download happens before, in the init container.
LOAD_BASE_SECONDS = 300
LOAD_SECONDS_PER_BILLION_PARAMETERS = 5
# A model missing from the catalog: assume a large one rather than kill a slow load.
UNKNOWN_MODEL_LOAD_SECONDS = 900
# For the progress deadline only: pulling a GGUF of roughly 0.6 GB per billion parameters (Q4).
PULL_SECONDS_PER_BILLION_PARAMETERS = 20
UNKNOWN_MODEL_PULL_SECONDS = 1800


@dataclass(frozen=True)
class OllamaContext:
    pod: PodContext
    model: str  # the name clients send (status.servedModelName): loaded and served under it
    pull: str  # what `ollama pull` takes
    alias: bool  # pull and model differ as Ollama names: `ollama cp PULL MODEL` after the pull
    pull_manifest: str  # manifests/... of both, to leave an alias that is already right alone
    model_manifest: str
    insecure: bool  # plain HTTP: LLMSTAGE_PULL_INSECURE for the pull step
    registry_ca: ConfigMapKeyRef | None
    registry_key: SecretKeyRef | None
    num_parallel: int
    keep_alive: str
    context_length: int
    extra_env: list[dict[str, str]]
    pull_extra_env: list[dict[str, str]]
    home: str
    registry_ca_dir: str
    loaded_marker: str
    # The NVIDIA container toolkit writes into a GPU container's root filesystem (below); every
    # other Ollama container runs with a read-only one.


def startup_budget(parameters_billion: float | None) -> podlib.ProbeBudget:
    """Time the startup probe allows for loading the model (already on disk) into memory."""
    if parameters_billion is None:
        return podlib.ProbeBudget(UNKNOWN_MODEL_LOAD_SECONDS)
    return podlib.ProbeBudget(
        round(LOAD_BASE_SECONDS + LOAD_SECONDS_PER_BILLION_PARAMETERS * parameters_billion)
    )


def progress_deadline_seconds(parameters_billion: float | None) -> int:
    pull = (
        UNKNOWN_MODEL_PULL_SECONDS
        if parameters_billion is None
        else round(PULL_SECONDS_PER_BILLION_PARAMETERS * parameters_billion)
    )
    return podlib.IMAGE_PULL_ALLOWANCE_SECONDS + pull + startup_budget(parameters_billion).budget_seconds


def context(resolved: Resolved, settings: OllamaSettings, surge_blocked: bool = False) -> OllamaContext:
    params = resolved.model.parameters_billion
    pull = settings.pull_ref or resolved.model.ollama_tag
    served = resolved.served_model_name
    pull_name, served_name = ollama_name.parse(pull), ollama_name.parse(served)
    registry = settings.registry
    extra_env = podlib.extra_env(settings.env, RESERVED_ENV)
    return OllamaContext(
        pod=pod_context(
            resolved,
            Runtime.OLLAMA,
            settings,
            startup=startup_budget(params),
            deadline_seconds=progress_deadline_seconds(params),
            user_id=UID,
            surge_blocked=surge_blocked,
        ),
        model=served,
        pull=pull,
        alias=not pull_name.same(served_name),
        pull_manifest=pull_name.filepath,
        model_manifest=served_name.filepath,
        insecure=bool(registry and registry.insecure),
        registry_ca=registry.ca_config_map if registry else None,
        registry_key=registry.key_secret if registry else None,
        num_parallel=settings.num_parallel,
        keep_alive=settings.keep_alive,
        context_length=settings.context_length,
        extra_env=extra_env,
        pull_extra_env=podlib.without(extra_env, PULL_OWN_ENV),
        home=HOME,
        registry_ca_dir=REGISTRY_CA_DIR,
        loaded_marker=LOADED_MARKER,
    )


def render_deployment(
    resolved: Resolved, settings: OllamaSettings, surge_blocked: bool = False
) -> dict[str, Any]:
    return render_template(TEMPLATE, context(resolved, settings, surge_blocked))
