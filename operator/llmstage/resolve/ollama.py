"""Ollama's settings for a resolved LLMService: image, parallelism, keep-alive, context, registry.

ollama_settings(spec, per_replica, default_context, model, served) -> OllamaSettings
"""

from __future__ import annotations

from llmstage import ollama_name
from llmstage.api.spec import LLMServiceSpec
from llmstage.resolve.errors import SpecError
from llmstage.resolve.resolved import ConfigMapKeyRef, ModelInfo, OllamaRegistry, OllamaSettings, SecretKeyRef

# Pinned, so a rollout never changes the server version behind the user's back.
DEFAULT_OLLAMA_IMAGE = "ollama/ollama:0.17.4"
DEFAULT_KEEP_ALIVE = "-1"  # keep the model loaded: a serving pod exists to answer quickly


def ollama_settings(
    spec: LLMServiceSpec, per_replica: int, default_context: int, model: ModelInfo, served: str
) -> OllamaSettings:
    """spec.ollama with its defaults; raises SpecError for names Ollama cannot pull or serve."""
    asked = spec.ollama
    tag = model.ollama_tag
    name_field = "spec.model.name"
    if not ollama_name.is_valid(tag):
        raise SpecError(
            name_field,
            f"{tag!r} is not an Ollama model name, so `ollama pull` cannot fetch it: use "
            "[host/][namespace/]model[:tag] (letters, digits, '_', '-', '.'; '@' digests are not "
            "accepted by Ollama 0.17.4), e.g. llama3.1:8b",
        )
    if not ollama_name.is_valid(served):
        raise SpecError(
            "spec.servedModelName" if spec.served_model_name else name_field,
            f"{served!r} cannot be an Ollama model name, and Ollama serves the model under the name "
            "clients send: use [host/][namespace/]model[:tag] with letters, digits, '_', '-' and '.' "
            "(no '@'), e.g. 'chat' or 'meta-llama/Llama-3.1-8B-Instruct'",
        )
    registry_spec = asked.registry if asked else None
    registry = pull_ref = None
    if registry_spec is not None:
        if ollama_name.has_host(tag):
            raise SpecError(
                "spec.ollama.registry.host",
                f"model {tag!r} already names a registry host; remove the host from spec.model.name or "
                "remove spec.ollama.registry",
            )
        _, own_namespace, model_part, tag_part = ollama_name.parse_bare(tag)
        namespace = own_namespace or registry_spec.namespace or ollama_name.DEFAULT_NAMESPACE
        pull_ref = f"{registry_spec.host}/{namespace}/{model_part}:{tag_part or ollama_name.DEFAULT_TAG}"
        registry = OllamaRegistry(
            host=registry_spec.host,
            insecure=registry_spec.insecure,
            ca_config_map=(
                ConfigMapKeyRef(registry_spec.ca_config_map_ref.name, registry_spec.ca_config_map_ref.key)
                if registry_spec.ca_config_map_ref
                else None
            ),
            key_secret=(
                SecretKeyRef(registry_spec.key_secret_ref.name, registry_spec.key_secret_ref.key)
                if registry_spec.key_secret_ref
                else None
            ),
        )
    return OllamaSettings(
        image=(asked.image if asked else None) or DEFAULT_OLLAMA_IMAGE,
        # Explicit on purpose: Ollama's default changed from 4 to 2 to 1 across releases.
        num_parallel=(asked.num_parallel if asked else None) or min(per_replica, 64),
        keep_alive=(asked.keep_alive if asked else None) or DEFAULT_KEEP_ALIVE,
        context_length=(asked.context_length if asked else None) or default_context,
        env=dict(asked.env) if asked else {},
        pull_ref=pull_ref,
        registry=registry,
        env_from=tuple(
            e.model_dump(by_alias=True, exclude_none=True) for e in (asked.env_from if asked else ())
        ),
        api_key_secret_ref=(
            SecretKeyRef(asked.api_key_secret_ref.name, asked.api_key_secret_ref.key)
            if asked and asked.api_key_secret_ref
            else None
        ),
    )
