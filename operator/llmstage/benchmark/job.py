"""The benchmark Job, rendered from the service and the user's options (pure).

    benchmark_job(target, options) -> dict

One pod, never restarted (a retried benchmark would measure twice), bounded by
activeDeadlineSeconds, collected by ttlSecondsAfterFinished even when the CLI that started it is
gone, and deleted with the service (ownerReference). The pod sends the service's own API key
when it has one, by secretKeyRef: the CLI never reads the Secret. It runs as a non-root user
with a read-only root filesystem, no service account token and no capabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmstage.benchmark.store import labels, owner_reference
from llmstage.benchmark.sweep import API_KEY_ENV

# The image `hack/images.py benchmark` builds (images/benchmark/Dockerfile): GuideLLM and the
# sweep. Its tag is llmstage's version (a unit test holds them together).
DEFAULT_IMAGE = "llmstage/benchmark:0.1.0"
DEFAULT_LEVELS = (1, 2, 4, 8, 16, 32, 50)
MAX_LEVEL = 1000
MAX_LEVELS = 20  # levels in one benchmark (status.benchmark.levels allows 64)
CONTAINER = "guidellm"
# Per level beyond its own duration: GuideLLM starting (imports, the tokenizer, 1,000 prompts),
# its scheduler's 5 s start delay, and the requests still running when the time is up.
LEVEL_OVERHEAD_SECONDS = 60
# Before the first level: the image pull and one warm-up request that may load the model.
START_SECONDS = 300
TTL_SECONDS = 600


@dataclass(frozen=True)
class Target:
    """The service to measure, as the API server has it."""

    namespace: str
    name: str
    uid: str
    endpoint: str
    model: str
    api_key: tuple[str, str] | None  # (Secret name, key)


@dataclass(frozen=True)
class Options:
    levels: tuple[int, ...]
    prompt_tokens: int = 256
    output_tokens: int = 128
    duration_seconds: int = 30
    image: str = DEFAULT_IMAGE
    tokenizer: str | None = None  # the image's own when None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[str, ...] = ()


def job_name(service: str) -> str:
    return f"{service}-benchmark"


def default_levels(expected_users: int) -> tuple[int, ...]:
    """DEFAULT_LEVELS up to the first one at least twice the expected users: one step beyond
    what the stage expects, so a knee at the expected users shows."""
    out: list[int] = []
    for level in DEFAULT_LEVELS:
        out.append(level)
        if level >= 2 * expected_users:
            break
    return tuple(out)


def deadline_seconds(options: Options) -> int:
    return START_SECONDS + len(options.levels) * (options.duration_seconds + LEVEL_OVERHEAD_SECONDS)


def benchmark_job(target: Target, options: Options) -> dict[str, Any]:
    args = [
        "--target",
        target.endpoint,
        "--model",
        target.model,
        "--levels",
        ",".join(str(level) for level in options.levels),
        "--prompt-tokens",
        str(options.prompt_tokens),
        "--output-tokens",
        str(options.output_tokens),
        "--duration",
        str(options.duration_seconds),
    ]
    if options.tokenizer:
        args += ["--tokenizer", options.tokenizer]
    env: list[dict[str, Any]] = []
    if target.api_key:
        secret, key = target.api_key
        env.append({"name": API_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    pod_labels = labels(target.name, "job")
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        # No Docker-link variables of the namespace's Services in the environment.
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": CONTAINER,
                "image": options.image,
                "imagePullPolicy": "IfNotPresent",
                "args": args,
                "env": env,
                # GuideLLM's processes (its main one, one worker) and the sweep peaked at 665 MiB
                # of summed RSS here, at 8 users with 256-token prompts.
                "resources": {"requests": {"cpu": "500m", "memory": "768Mi"}, "limits": {"memory": "2Gi"}},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "512Mi"}}],
    }
    if options.node_selector:
        pod_spec["nodeSelector"] = dict(options.node_selector)
    if options.tolerations:
        pod_spec["tolerations"] = [{"key": key, "operator": "Exists"} for key in options.tolerations]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(target.name),
            "namespace": target.namespace,
            "labels": labels(target.name, "job"),
            "ownerReferences": [owner_reference(target.name, target.uid)],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_seconds(options),
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {"kubectl.kubernetes.io/default-container": CONTAINER},
                },
                "spec": pod_spec,
            },
        },
    }
