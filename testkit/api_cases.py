"""LLMService objects the API must reject, shared by the offline (pydantic) and the API-server tests.

Each case is the same object checked twice: tests/unit/test_api_models.py expects pydantic to
reject it, tests/integration/test_crd_admission.py expects the API server to. Both must hold, so
the CEL rules in the CRD and their Python twins cannot drift apart.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

API_VERSION = "llmstage.io/v1alpha1"


def service(name: str = "svc", **spec: Any) -> dict[str, Any]:
    """A valid LLMService object; keyword arguments are merged into the spec."""
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "LLMService",
        "metadata": {"name": name},
        "spec": {"model": {"name": "llama3.1:8b"}},
    }
    body["spec"].update(copy.deepcopy(spec))
    return body


def _without_model_name() -> dict[str, Any]:
    body = service()
    body["spec"]["model"] = {"huggingFaceId": "meta-llama/Llama-3.1-8B-Instruct"}
    return body


GPU_H100 = {"gpu": {"count": 1, "product": "NVIDIA-H100-80GB-HBM3"}}
API_KEY = {"apiKeySecretRef": {"name": "api-key"}}
PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"
WAKE = 'sum(rate(nginx_ingress_controller_requests{service="svc"}[2m]))'
S3_URL = "s3://models/llama-3.1-8b-instruct"


@dataclass(frozen=True)
class Invalid:
    id: str
    body: dict[str, Any]
    message: str  # substring of the API server's error
    offline: str | None = None  # substring of pydantic's error when it words it differently


INVALID: list[Invalid] = [
    # ---- CEL rules (same message from the API server and from pydantic)
    Invalid(
        "replicas-and-autoscaling",
        service(replicas=2, autoscaling={"maxReplicas": 4}),
        "spec.replicas and spec.autoscaling are mutually exclusive",
    ),
    Invalid(
        "production-vllm-on-cpu-without-key",
        service(stage="production", runtime="vllm", resources={"gpu": {"count": 0}}),
        "spec.vllm.apiKeySecretRef is required in stage production",
    ),
    Invalid(
        "tensor-parallel-above-gpus",
        service(runtime="vllm", resources={"gpu": {"count": 2}}, vllm={"tensorParallelSize": 4}),
        "spec.vllm.tensorParallelSize must not exceed spec.resources.gpu.count",
    ),
    Invalid(
        "tensor-parallel-without-gpus",
        service(vllm={"tensorParallelSize": 2}),
        "spec.vllm.tensorParallelSize must not exceed spec.resources.gpu.count",
    ),
    # ---- one replica over several nodes (spec.resources.gpu.nodes)
    Invalid(
        "nodes-without-gpus",
        service(resources={"gpu": {"count": 0, "nodes": 2}}),
        "spec.resources.gpu.nodes above 1 spreads one vLLM replica over several GPU nodes and needs",
    ),
    Invalid(
        "nodes-with-ollama",
        service(runtime="ollama", resources={"gpu": {"count": 8, "nodes": 2}}),
        "spec.resources.gpu.nodes above 1 needs vLLM",
    ),
    Invalid(
        "nodes-with-tensor-parallel-below-count",
        service(
            stage="production",
            resources={"gpu": {"count": 8, "nodes": 2}},
            vllm={**API_KEY, "tensorParallelSize": 4},
        ),
        "spec.vllm.tensorParallelSize must equal spec.resources.gpu.count when",
    ),
    Invalid(
        "nodes-with-pipeline-flag",
        service(
            stage="production",
            resources={"gpu": {"count": 8, "nodes": 2}},
            vllm={**API_KEY, "extraArgs": ["--pipeline-parallel-size=4"]},
        ),
        "spec.vllm.extraArgs must not set --pipeline-parallel-size",
    ),
    Invalid(
        "nodes-above-limit",
        service(stage="production", resources={"gpu": {"count": 8, "nodes": 17}}, vllm=API_KEY),
        "spec.resources.gpu.nodes",
        offline="less than or equal to 16",
    ),
    # ---- spec.routing
    Invalid(
        "routing-without-gateway",
        service(routing={"endpointPickerRef": {"name": "epp"}}),
        "spec.routing.gatewayRef",
        offline="gatewayRef",
    ),
    Invalid(
        "routing-bad-failure-mode",
        service(
            routing={
                "gatewayRef": {"name": "gw"},
                "endpointPickerRef": {"name": "epp", "failureMode": "Maybe"},
            }
        ),
        "spec.routing.endpointPickerRef.failureMode",
        offline="FailOpen",
    ),
    Invalid(
        "gpu-product-without-count",
        service(resources={"gpu": {"count": 0, "product": "NVIDIA-L4"}}),
        "spec.resources.gpu.product needs spec.resources.gpu.count >= 1",
    ),
    Invalid(
        "gpu-memory-without-count",
        service(resources={"gpu": {"count": 0, "memory": "24Gi"}}),
        "spec.resources.gpu.memory needs spec.resources.gpu.count >= 1",
    ),
    Invalid(
        "min-above-max-replicas",
        service(autoscaling={"minReplicas": 5, "maxReplicas": 2}),
        "spec.autoscaling.minReplicas must be <= spec.autoscaling.maxReplicas",
    ),
    Invalid(
        "production-vllm-without-api-key",
        service(stage="production", resources=GPU_H100),
        "spec.vllm.apiKeySecretRef is required in stage production",
    ),
    Invalid(
        "production-default-gpu-without-api-key",
        service(stage="production"),
        "spec.vllm.apiKeySecretRef is required in stage production",
    ),
    Invalid(
        "queue-metric-on-ollama",
        service(runtime="ollama", autoscaling={"metric": "queue"}),
        "spec.autoscaling.metric queue reads vLLM's queue depth",
    ),
    Invalid(
        "extra-args-repeat-port",
        service(vllm={"extraArgs": ["--enable-prefix-caching", "--port=9000"]}),
        "spec.vllm.extraArgs must not repeat flags llmstage sets",
    ),
    Invalid(
        "extra-args-repeat-model",
        service(vllm={"extraArgs": ["--max_model_len", "4096"]}),
        "spec.vllm.extraArgs must not repeat flags llmstage sets",
    ),
    Invalid(
        "ollama-env-managed",
        service(ollama={"env": {"OLLAMA_NUM_PARALLEL": "8"}}),
        "spec.ollama.env must not set OLLAMA_HOST",
    ),
    Invalid(
        "toleration-exists-with-value",
        service(scheduling={"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}),
        "value must be empty when operator is Exists",
    ),
    Invalid(
        "toleration-seconds-without-noexecute",
        service(scheduling={"tolerations": [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 30}]}),
        "tolerationSeconds applies only to effect NoExecute",
    ),
    Invalid("name-too-long", service(name="a" * 53), "metadata.name must be at most 52 characters"),
    Invalid("name-starts-with-digit", service(name="8b-llama"), "metadata.name must start with a letter"),
    Invalid("name-with-a-dot", service(name="chat.v2"), "metadata.name must not contain '.'"),
    Invalid("name-vllm", service(name="vllm"), "metadata.name must not be 'vllm'"),
    Invalid(
        "served-name-not-an-ollama-name",
        service(runtime="ollama", servedModelName="chat@v1"),
        "spec.servedModelName must be a valid Ollama model name with runtime ollama",
    ),
    Invalid(
        "served-name-with-a-dotted-namespace-on-ollama",
        service(runtime="ollama", servedModelName="org.name/model"),
        "spec.servedModelName must be a valid Ollama model name with runtime ollama",
    ),
    Invalid(
        "registry-insecure-with-a-ca",
        service(
            ollama={"registry": {"host": "r.local:5000", "insecure": True, "caConfigMapRef": {"name": "ca"}}}
        ),
        "spec.ollama.registry.insecure pulls over plain HTTP",
    ),
    Invalid(
        "ollama-env-sets-noprune",
        service(ollama={"env": {"OLLAMA_NOPRUNE": "0"}}),
        "spec.ollama.env must not set",
    ),
    Invalid(
        "ollama-env-sets-home",
        service(ollama={"env": {"HOME": "/root"}}),
        "spec.ollama.env must not set",
    ),
    Invalid(
        "ollama-env-sets-llmstage-variable",
        service(ollama={"env": {"LLMSTAGE_MODEL": "x"}}),
        "spec.ollama.env must not set",
    ),
    Invalid(
        "vllm-env-sets-hf-token",
        service(vllm={"env": {"HF_TOKEN": "hf_x"}}),
        "spec.vllm.env must not set HOME, USER, LOGNAME, HF_HOME, VLLM_CACHE_ROOT",
    ),
    Invalid(
        "vllm-env-sets-api-key",
        service(vllm={"env": {"VLLM_API_KEY": "k"}}),
        "use spec.huggingFaceTokenSecretRef for HF_TOKEN and spec.vllm.apiKeySecretRef",
    ),
    Invalid(
        "env-from-both-sources",
        service(vllm={"envFrom": [{"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}]}),
        "spec.ollama.envFrom[] and spec.vllm.envFrom[] entries need exactly one of configMapRef",
    ),
    Invalid(
        "env-from-no-source",
        service(ollama={"envFrom": [{"prefix": "PROXY_"}]}),
        "entries need exactly one of configMapRef and secretRef",
    ),
    Invalid(
        "pod-label-with-llmstage-prefix",
        service(pod={"labels": {"llmstage.io/stage": "dev"}}),
        "spec.pod.labels must not use the prefixes app.kubernetes.io/, llmstage.io/",
    ),
    Invalid(
        "pod-label-app-kubernetes-io",
        service(pod={"labels": {"app.kubernetes.io/name": "x"}}),
        "spec.pod.labels must not use the prefixes",
    ),
    Invalid(
        "pod-annotation-default-container",
        service(pod={"annotations": {"kubectl.kubernetes.io/default-container": "pull-model"}}),
        "spec.pod.annotations must not set kubectl.kubernetes.io/default-container",
    ),
    Invalid(
        "pod-volume-named-like-the-cache",
        service(pod={"volumes": [{"name": "model-cache", "emptyDir": {"sizeLimit": "1Gi"}}]}),
        "spec.pod.volumes[].name must not be model-cache",
    ),
    Invalid(
        "pod-volume-twice",
        service(
            pod={
                "volumes": [
                    {"name": "ca", "emptyDir": {"sizeLimit": "1Gi"}},
                    {"name": "ca", "configMap": {"name": "c"}},
                ]
            }
        ),
        "spec.pod.volumes[].name must be unique",
    ),
    Invalid(
        "pod-mount-of-a-missing-volume",
        service(pod={"volumeMounts": [{"name": "ca", "mountPath": "/etc/ca"}]}),
        "spec.pod.volumeMounts[].name must name a volume of spec.pod.volumes",
    ),
    Invalid(
        "pod-mount-over-the-cache",
        service(
            pod={
                "volumes": [{"name": "ca", "emptyDir": {"sizeLimit": "1Gi"}}],
                "volumeMounts": [{"name": "ca", "mountPath": "/models/huggingface"}],
            }
        ),
        "spec.pod.volumeMounts[].mountPath must not be at or under /models",
    ),
    Invalid(
        "pod-mount-on-tmp",
        service(
            pod={
                "volumes": [{"name": "ca", "emptyDir": {"sizeLimit": "1Gi"}}],
                "volumeMounts": [{"name": "ca", "mountPath": "/tmp"}],
            }
        ),
        "spec.pod.volumeMounts[].mountPath must not be at or under",
    ),
    Invalid(
        "pod-mount-path-twice",
        service(
            pod={
                "volumes": [
                    {"name": "a", "emptyDir": {"sizeLimit": "1Gi"}},
                    {"name": "b", "emptyDir": {"sizeLimit": "1Gi"}},
                ],
                "volumeMounts": [{"name": "a", "mountPath": "/etc/x"}, {"name": "b", "mountPath": "/etc/x"}],
            }
        ),
        "spec.pod.volumeMounts[].mountPath must be unique",
    ),
    Invalid(
        "lora-on-ollama",
        service(runtime="ollama", lora={"adapters": [{"name": "sql", "huggingFaceId": "org/sql-lora"}]}),
        "spec.lora needs vLLM: Ollama applies a LoRA adapter only by building a new model",
    ),
    Invalid(
        "lora-adapter-named-like-the-model",
        service(lora={"adapters": [{"name": "llama3.1:8b", "huggingFaceId": "org/sql-lora"}]}),
        "spec.lora.adapters[].name must differ from the served model name",
    ),
    Invalid(
        "lora-adapter-named-like-the-served-name",
        service(
            servedModelName="chat", lora={"adapters": [{"name": "chat", "huggingFaceId": "org/sql-lora"}]}
        ),
        "spec.lora.adapters[].name must differ from the served model name",
    ),
    Invalid(
        "lora-adapter-names-twice",
        service(
            lora={
                "adapters": [
                    {"name": "sql", "huggingFaceId": "org/sql-lora"},
                    {"name": "sql", "huggingFaceId": "org/sql-lora-v2"},
                ]
            }
        ),
        "spec.lora.adapters[].name must be unique",
    ),
    Invalid(
        "lora-max-loras-above-adapters",
        service(lora={"maxLoras": 3, "adapters": [{"name": "sql", "huggingFaceId": "org/sql-lora"}]}),
        "spec.lora.maxLoras must not exceed the number of adapters",
    ),
    Invalid(
        "cache-claim-name-with-size",
        service(cache={"claimName": "weights", "size": "50Gi"}),
        "spec.cache.claimName names an existing claim, whose size, StorageClass and access mode are its own",
    ),
    Invalid(
        "cache-claim-name-with-storage-class",
        service(cache={"claimName": "weights", "storageClassName": "fast"}),
        "remove spec.cache.size, storageClassName and accessMode, or remove claimName",
    ),
    Invalid(
        "cache-claim-name-with-access-mode",
        service(cache={"claimName": "weights", "accessMode": "ReadWriteMany"}),
        "spec.cache.claimName names an existing claim",
    ),
    Invalid(
        "cache-claim-name-per-pod",
        service(cache={"claimName": "weights", "mode": "PerPod"}),
        "spec.cache.claimName is one claim that every pod mounts, and mode PerPod gives each pod a claim",
    ),
    Invalid(
        "cache-per-pod-read-write-many",
        service(cache={"mode": "PerPod", "accessMode": "ReadWriteMany"}),
        "spec.cache.accessMode ReadWriteMany is for a cache that several pods share",
    ),
    Invalid(
        "extra-args-enable-lora",
        service(vllm={"extraArgs": ["--enable-lora"]}),
        "spec.vllm.extraArgs must not repeat flags llmstage sets",
    ),
    # ---- schema bounds, enums and patterns (the API server names the field; pydantic words it its way)
    Invalid(
        "lora-rank-not-a-vllm-rank",
        service(lora={"maxRank": 12, "adapters": [{"name": "sql", "huggingFaceId": "org/sql-lora"}]}),
        "spec.lora.maxRank",
        "8",
    ),
    Invalid(
        "lora-without-adapters",
        service(lora={"adapters": []}),
        "spec.lora.adapters",
        "at least 1",
    ),
    Invalid(
        "lora-adapter-not-a-repo",
        service(lora={"adapters": [{"name": "sql", "huggingFaceId": "sql-lora"}]}),
        "spec.lora.adapters[0].huggingFaceId",
        "match",
    ),
    Invalid(
        "pod-volume-without-a-name",
        service(pod={"volumes": [{"emptyDir": {"sizeLimit": "1Gi"}}]}),
        "spec.pod.volumes[0].name",
        "a volume needs a name",
    ),
    Invalid(
        "pod-mount-path-relative",
        service(
            pod={
                "volumes": [{"name": "a", "emptyDir": {"sizeLimit": "1Gi"}}],
                "volumeMounts": [{"name": "a", "mountPath": "etc/x"}],
            }
        ),
        "spec.pod.volumeMounts[0].mountPath",
        "match",
    ),
    Invalid(
        "pod-service-account-uppercase",
        service(pod={"serviceAccountName": "Reader"}),
        "spec.pod.serviceAccountName",
        "match",
    ),
    Invalid(
        "pod-label-value-too-long",
        service(pod={"labels": {"team": "x" * 64}}),
        "spec.pod.labels.team",
        "at most 63",
    ),
    Invalid(
        "ephemeral-storage-not-a-quantity",
        service(resources={"ephemeralStorage": "20GB"}),
        "spec.resources.ephemeralStorage",
        "quantity",
    ),
    Invalid(
        "gpu-memory-utilization-above-1",
        service(vllm={"gpuMemoryUtilization": 1.5}),
        "spec.vllm.gpuMemoryUtilization",
        "less than or equal to 1",
    ),
    Invalid(
        "gpu-memory-utilization-zero",
        service(vllm={"gpuMemoryUtilization": 0}),
        "spec.vllm.gpuMemoryUtilization",
        "greater than 0",
    ),
    Invalid(
        "max-model-len-tiny",
        service(vllm={"maxModelLen": 16}),
        "spec.vllm.maxModelLen",
        "greater than or equal",
    ),
    Invalid(
        "max-num-seqs-zero", service(vllm={"maxNumSeqs": 0}), "spec.vllm.maxNumSeqs", "greater than or equal"
    ),
    Invalid(
        "num-parallel-above-64",
        service(ollama={"numParallel": 65}),
        "spec.ollama.numParallel",
        "less than or equal",
    ),
    Invalid(
        "too-many-gpus", service(resources={"gpu": {"count": 9}}), "spec.resources.gpu.count", "less than"
    ),
    Invalid("unknown-stage", service(stage="prod"), "spec.stage", "'dev', 'staging' or 'production'"),
    Invalid("unknown-runtime", service(runtime="tgi"), "spec.runtime", "'auto', 'ollama' or 'vllm'"),
    Invalid(
        "zero-users", service(expectedConcurrency=0), "spec.expectedConcurrency", "greater than or equal"
    ),
    Invalid("negative-replicas", service(replicas=-1), "spec.replicas", "greater than or equal"),
    Invalid(
        "memory-not-a-quantity", service(resources={"memory": "8GB"}), "spec.resources.memory", "quantity"
    ),
    Invalid("cache-size-not-a-quantity", service(cache={"size": "lots"}), "spec.cache.size", "quantity"),
    Invalid(
        "image-with-space", service(vllm={"image": "vllm/vllm-openai latest"}), "spec.vllm.image", "match"
    ),
    Invalid("negative-memory", service(resources={"memory": "-8Gi"}), "spec.resources.memory", "quantity"),
    Invalid("negative-integer-cpu", service(resources={"cpu": -2}), "spec.resources.cpu", "quantity"),
    Invalid(
        "keep-alive-not-a-duration",
        service(ollama={"keepAlive": "forever"}),
        "spec.ollama.keepAlive",
        "match",
    ),
    Invalid(
        "hugging-face-id-without-org",
        service(model={"name": "llama3.1:8b", "huggingFaceId": "llama"}),
        "spec.model.huggingFaceId",
        "match",
    ),
    Invalid("model-name-missing", _without_model_name(), "spec.model.name", "name"),
    Invalid("unknown-cache-mode", service(cache={"mode": "PerNode"}), "spec.cache.mode", "PerPod"),
    Invalid(
        "cache-claim-name-not-a-name",
        service(cache={"claimName": "My_Claim"}),
        "spec.cache.claimName",
        "match",
    ),
    Invalid(
        "unknown-access-mode", service(cache={"accessMode": "ReadOnlyMany"}), "spec.cache.accessMode", "Read"
    ),
    Invalid(
        "registry-host-with-a-scheme",
        service(ollama={"registry": {"host": "https://r.local"}}),
        "spec.ollama.registry.host",
        "match",
    ),
    Invalid(
        "registry-namespace-with-a-dot",
        service(ollama={"registry": {"host": "r.local", "namespace": "a.b"}}),
        "spec.ollama.registry.namespace",
        "match",
    ),
    # ---- spec.autoscaling.autoscaler keda
    Invalid(
        "scale-to-zero-with-hpa",
        service(stage="staging", autoscaling={"minReplicas": 0}),
        "spec.autoscaling.minReplicas 0 (scale to zero) needs autoscaler keda",
    ),
    Invalid(
        "keda-settings-with-hpa",
        service(autoscaling={"autoscaler": "hpa", "keda": {"serverAddress": PROMETHEUS}}),
        "spec.autoscaling.keda is only read with autoscaler keda",
    ),
    Invalid(
        "scale-to-zero-without-wake-query",
        service(
            stage="staging",
            autoscaling={"autoscaler": "keda", "minReplicas": 0, "keda": {"serverAddress": PROMETHEUS}},
        ),
        "spec.autoscaling.minReplicas 0 needs spec.autoscaling.keda.wakeQuery",
    ),
    Invalid(
        "scale-to-zero-in-production",
        service(
            stage="production",
            runtime="ollama",
            autoscaling={
                "autoscaler": "keda",
                "minReplicas": 0,
                "keda": {"serverAddress": PROMETHEUS, "wakeQuery": WAKE},
            },
        ),
        "spec.autoscaling.minReplicas 0 (scale to zero) is for stages dev and staging",
    ),
    Invalid(
        "keda-wake-query-without-server",
        service(autoscaling={"autoscaler": "keda", "keda": {"wakeQuery": WAKE}}),
        "spec.autoscaling.keda.query and wakeQuery are PromQL that KEDA sends to Prometheus",
    ),
    Invalid(
        "keda-query-without-server",
        service(autoscaling={"autoscaler": "keda", "keda": {"query": "sum(x)"}}),
        "spec.autoscaling.keda.query and wakeQuery are PromQL that KEDA sends to Prometheus",
    ),
    Invalid(
        "keda-on-vllm-without-server",
        service(runtime="vllm", resources={"gpu": {"count": 1}}, autoscaling={"autoscaler": "keda"}),
        "spec.autoscaling.keda.serverAddress is required with autoscaler keda on vLLM",
    ),
    Invalid(
        "keda-in-production-without-server",
        service(stage="production", resources=GPU_H100, vllm=API_KEY, autoscaling={"autoscaler": "keda"}),
        "spec.autoscaling.keda.serverAddress is required with autoscaler keda on vLLM",
    ),
    Invalid(
        "keda-queue-without-server",
        service(
            stage="production",
            resources=GPU_H100,
            vllm=API_KEY,
            autoscaling={"autoscaler": "keda", "metric": "queue"},
        ),
        "spec.autoscaling.keda.serverAddress is required with autoscaler keda on vLLM",
    ),
    Invalid(
        "unknown-autoscaler",
        service(autoscaling={"autoscaler": "vpa"}),
        "spec.autoscaling.autoscaler",
        "'hpa' or 'keda'",
    ),
    Invalid(
        "negative-min-replicas",
        service(autoscaling={"autoscaler": "keda", "minReplicas": -1}),
        "spec.autoscaling.minReplicas",
        "greater than or equal",
    ),
    Invalid(
        "keda-server-without-scheme",
        service(autoscaling={"autoscaler": "keda", "keda": {"serverAddress": "prometheus:9090"}}),
        "spec.autoscaling.keda.serverAddress",
        "match",
    ),
    Invalid(
        "keda-server-with-space",
        service(autoscaling={"autoscaler": "keda", "keda": {"serverAddress": "http://prom etheus:9090"}}),
        "spec.autoscaling.keda.serverAddress",
        "match",
    ),
    Invalid(
        "keda-empty-query",
        service(autoscaling={"autoscaler": "keda", "keda": {"serverAddress": PROMETHEUS, "query": ""}}),
        "spec.autoscaling.keda.query",
        "at least 1",
    ),
    Invalid(
        "keda-negative-cooldown",
        service(autoscaling={"autoscaler": "keda", "keda": {"cooldownPeriod": -5}}),
        "spec.autoscaling.keda.cooldownPeriod",
        "greater than or equal",
    ),
    Invalid(
        "keda-cooldown-above-a-day",
        service(autoscaling={"autoscaler": "keda", "keda": {"cooldownPeriod": 86401}}),
        "spec.autoscaling.keda.cooldownPeriod",
        "less than or equal",
    ),
    Invalid(
        "keda-misspelled-field",
        service(autoscaling={"autoscaler": "keda", "keda": {"serverAdress": PROMETHEUS}}),
        'unknown field "spec.autoscaling.keda.serverAdress"',
        "serverAdress",
    ),
    # ---- spec.model.source
    Invalid(
        "source-with-two-kinds",
        service(model={"name": "llama3.1:8b", "source": {"s3": {"url": S3_URL}, "pvc": {"claimName": "m"}}}),
        "spec.model.source (and spec.lora.adapters[].source) must set exactly one of huggingFace",
    ),
    Invalid(
        "source-empty",
        service(model={"name": "llama3.1:8b", "source": {}}),
        "spec.model.source (and spec.lora.adapters[].source) must set exactly one of huggingFace",
    ),
    Invalid(
        "source-next-to-hugging-face-id",
        service(
            model={"name": "llama3.1:8b", "huggingFaceId": "a/b", "source": {"huggingFace": {"id": "a/b"}}}
        ),
        "spec.model.huggingFaceId and spec.model.source both say where vLLM's weights come from",
    ),
    Invalid(
        "source-with-model-revision",
        service(model={"name": "llama3.1:8b", "revision": "v1", "source": {"pvc": {"claimName": "m"}}}),
        "spec.model.revision pins a Hugging Face revision of spec.model.huggingFaceId",
    ),
    Invalid(
        "source-pvc-path-with-dot-dot",
        service(model={"name": "llama3.1:8b", "source": {"pvc": {"claimName": "m", "path": "/a/../etc"}}}),
        "spec.model.source.pvc.path (and spec.lora.adapters[].source.pvc.path) must not contain",
    ),
    Invalid(
        "source-oci-path-is-dot-dot",
        service(model={"name": "llama3.1:8b", "source": {"oci": {"image": "r.local/m:1", "path": "/.."}}}),
        "spec.model.source.oci.path (and spec.lora.adapters[].source.oci.path) must not contain",
    ),
    Invalid(
        "source-s3-url-with-dot-dot",
        service(model={"name": "llama3.1:8b", "source": {"s3": {"url": "s3://models/../secrets"}}}),
        "spec.model.source.s3.url (and spec.lora.adapters[].source.s3.url) must not contain a '..' segment",
    ),
    Invalid(
        "source-gcs-url-with-dot-dot",
        service(model={"name": "llama3.1:8b", "source": {"gcs": {"url": "gs://models/a/.."}}}),
        "spec.model.source.gcs.url (and spec.lora.adapters[].source.gcs.url) must not contain a '..' segment",
    ),
    Invalid(
        "source-pvc-on-ollama",
        service(runtime="ollama", model={"name": "llama3.1:8b", "source": {"pvc": {"claimName": "m"}}}),
        "spec.model.source pvc, s3, gcs and oci hold Hugging Face-format weights for vLLM",
    ),
    Invalid(
        "source-oci-on-ollama",
        service(runtime="ollama", model={"name": "llama3.1:8b", "source": {"oci": {"image": "r.local/m:1"}}}),
        "with runtime ollama remove the source (use spec.ollama.registry",
    ),
    Invalid(
        "source-mirror-twice",
        service(
            model={
                "name": "llama3.1:8b",
                "source": {"huggingFace": {"id": "a/b", "endpoint": "https://m.local"}},
            },
            vllm={"env": {"HF_ENDPOINT": "https://other.local"}},
        ),
        "spec.vllm.env.HF_ENDPOINT and spec.model.source.huggingFace.endpoint both set",
    ),
    Invalid(
        "pod-volume-named-model-source",
        service(pod={"volumes": [{"name": "model-source", "emptyDir": {"sizeLimit": "1Gi"}}]}),
        "spec.pod.volumes[].name must not be",
    ),
    Invalid(
        "pod-mount-on-the-model-source",
        service(
            pod={
                "volumes": [{"name": "w", "emptyDir": {"sizeLimit": "1Gi"}}],
                "volumeMounts": [{"name": "w", "mountPath": "/model-source/x"}],
            }
        ),
        "spec.pod.volumeMounts[].mountPath must not be at or under",
    ),
    Invalid(
        "source-pvc-path-relative",
        service(model={"name": "llama3.1:8b", "source": {"pvc": {"claimName": "m", "path": "llama"}}}),
        "spec.model.source.pvc.path",
        "match",
    ),
    Invalid(
        "source-pvc-claim-not-a-name",
        service(model={"name": "llama3.1:8b", "source": {"pvc": {"claimName": "Models_1"}}}),
        "spec.model.source.pvc.claimName",
        "match",
    ),
    Invalid(
        "source-pvc-without-claim",
        service(model={"name": "llama3.1:8b", "source": {"pvc": {"path": "/llama"}}}),
        "spec.model.source.pvc.claimName",
        "claimName",
    ),
    Invalid(
        "source-s3-url-of-gcs",
        service(model={"name": "llama3.1:8b", "source": {"s3": {"url": "gs://models/llama"}}}),
        "spec.model.source.s3.url",
        "match",
    ),
    Invalid(
        "source-s3-url-https",
        service(
            model={"name": "llama3.1:8b", "source": {"s3": {"url": "https://models.s3.amazonaws.com/l"}}}
        ),
        "spec.model.source.s3.url",
        "match",
    ),
    Invalid(
        "source-s3-endpoint-without-scheme",
        service(model={"name": "llama3.1:8b", "source": {"s3": {"url": S3_URL, "endpoint": "minio:9000"}}}),
        "spec.model.source.s3.endpoint",
        "match",
    ),
    Invalid(
        "source-s3-endpoint-with-a-path",
        service(
            model={
                "name": "llama3.1:8b",
                "source": {"s3": {"url": S3_URL, "endpoint": "http://minio:9000/b"}},
            }
        ),
        "spec.model.source.s3.endpoint",
        "match",
    ),
    Invalid(
        "source-s3-credentials-with-a-key",
        service(
            model={
                "name": "llama3.1:8b",
                "source": {"s3": {"url": S3_URL, "credentialsSecretRef": {"name": "s3", "key": "id"}}},
            }
        ),
        'unknown field "spec.model.source.s3.credentialsSecretRef.key"',
        "key",
    ),
    Invalid(
        "source-s3-region-uppercase",
        service(model={"name": "llama3.1:8b", "source": {"s3": {"url": S3_URL, "region": "EU-WEST-1"}}}),
        "spec.model.source.s3.region",
        "match",
    ),
    Invalid(
        "source-s3-credentials-name-not-a-name",
        service(
            model={
                "name": "llama3.1:8b",
                "source": {"s3": {"url": S3_URL, "credentialsSecretRef": {"name": "S3_Keys"}}},
            }
        ),
        "spec.model.source.s3.credentialsSecretRef.name",
        "match",
    ),
    Invalid(
        "source-s3-url-with-a-space",
        service(model={"name": "llama3.1:8b", "source": {"s3": {"url": "s3://models/llama 3"}}}),
        "spec.model.source.s3.url",
        "match",
    ),
    Invalid(
        "source-gcs-credentials-without-name",
        service(
            model={"name": "llama3.1:8b", "source": {"gcs": {"url": "gs://m/l", "credentialsSecretRef": {}}}}
        ),
        "spec.model.source.gcs.credentialsSecretRef.name",
        "name",
    ),
    Invalid(
        "source-oci-path-relative",
        service(model={"name": "llama3.1:8b", "source": {"oci": {"image": "r.local/m:1", "path": "model"}}}),
        "spec.model.source.oci.path",
        "match",
    ),
    Invalid(
        "source-unknown-kind",
        service(model={"name": "llama3.1:8b", "source": {"http": {"url": "https://x/m"}}}),
        'unknown field "spec.model.source.http"',
        "http",
    ),
    Invalid(
        "source-gcs-url-of-s3",
        service(model={"name": "llama3.1:8b", "source": {"gcs": {"url": "s3://models/llama"}}}),
        "spec.model.source.gcs.url",
        "match",
    ),
    Invalid(
        "source-oci-image-with-space",
        service(model={"name": "llama3.1:8b", "source": {"oci": {"image": "r.local/m 1"}}}),
        "spec.model.source.oci.image",
        "match",
    ),
    Invalid(
        "source-oci-unknown-pull-policy",
        service(
            model={
                "name": "llama3.1:8b",
                "source": {"oci": {"image": "r.local/m:1", "pullPolicy": "Sometimes"}},
            }
        ),
        "spec.model.source.oci.pullPolicy",
        "Always",
    ),
    Invalid(
        "source-mirror-without-scheme",
        service(
            model={"name": "llama3.1:8b", "source": {"huggingFace": {"id": "a/b", "endpoint": "hf-mirror"}}}
        ),
        "spec.model.source.huggingFace.endpoint",
        "match",
    ),
    Invalid(
        "source-hugging-face-id-without-org",
        service(model={"name": "llama3.1:8b", "source": {"huggingFace": {"id": "llama"}}}),
        "spec.model.source.huggingFace.id",
        "match",
    ),
    # ---- spec.lora.adapters[].source
    Invalid(
        "lora-adapter-with-id-and-source",
        service(
            lora={
                "adapters": [
                    {"name": "sql", "huggingFaceId": "org/sql-lora", "source": {"pvc": {"claimName": "a"}}}
                ]
            }
        ),
        "spec.lora.adapters[] need exactly one of huggingFaceId and source",
    ),
    Invalid(
        "lora-adapter-without-id-or-source",
        service(lora={"adapters": [{"name": "sql"}]}),
        "spec.lora.adapters[] need exactly one of huggingFaceId and source",
    ),
    Invalid(
        "lora-adapter-source-with-revision",
        service(
            lora={"adapters": [{"name": "sql", "revision": "v2", "source": {"pvc": {"claimName": "a"}}}]}
        ),
        "spec.lora.adapters[].revision pins a revision of huggingFaceId",
    ),
    Invalid(
        "lora-adapter-source-with-a-mirror",
        service(
            lora={
                "adapters": [
                    {
                        "name": "sql",
                        "source": {"huggingFace": {"id": "org/sql", "endpoint": "https://m.local"}},
                    }
                ]
            }
        ),
        "spec.lora.adapters[].source.huggingFace.endpoint is not read",
    ),
    Invalid(
        "lora-adapter-source-with-two-kinds",
        service(
            lora={
                "adapters": [
                    {"name": "sql", "source": {"pvc": {"claimName": "a"}, "oci": {"image": "r.local/a:1"}}}
                ]
            }
        ),
        "spec.lora.adapters[].source) must set exactly one of huggingFace",
    ),
    Invalid(
        "lora-adapter-source-path-with-dot-dot",
        service(lora={"adapters": [{"name": "sql", "source": {"pvc": {"claimName": "a", "path": "/../x"}}}]}),
        "must not contain a '..' segment",
    ),
    Invalid(
        "lora-adapter-source-s3-url-of-gcs",
        service(lora={"adapters": [{"name": "sql", "source": {"s3": {"url": "gs://a/b"}}}]}),
        "spec.lora.adapters[0].source.s3.url",
        "match",
    ),
    Invalid(
        "pod-volume-named-like-an-adapter-volume",
        service(pod={"volumes": [{"name": "lora-source-0", "emptyDir": {"sizeLimit": "1Gi"}}]}),
        "or start with lora-source-",
    ),
    Invalid(
        "pod-mount-on-the-adapter-sources",
        service(
            pod={
                "volumes": [{"name": "w", "emptyDir": {"sizeLimit": "1Gi"}}],
                "volumeMounts": [{"name": "w", "mountPath": "/lora-source"}],
            }
        ),
        "spec.pod.volumeMounts[].mountPath must not be at or under",
    ),
    # kubectl asks for strict field validation, so a typo is an error rather than silently pruned.
    Invalid("misspelled-field", service(modle={"name": "x"}), 'unknown field "spec.modle"', "modle"),
    # ---- sizes and network access
    Invalid(
        "pod-empty-dir-without-size-limit",
        service(pod={"volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory"}}]}),
        "spec.pod.volumes[].emptyDir needs a sizeLimit",
    ),
    Invalid(
        "network-client-without-selectors",
        service(networkPolicy={"allowedClients": [{}]}),
        "spec.networkPolicy.allowedClients[] needs namespaceSelector, podSelector or both",
    ),
    Invalid(
        "network-clients-with-the-policy-off",
        service(networkPolicy={"enabled": False, "allowedClients": [{"podSelector": {}}]}),
        "spec.networkPolicy.allowedClients has no effect with enabled false",
    ),
    Invalid(
        "network-client-expression-in-without-values",
        service(
            networkPolicy={
                "allowedClients": [{"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}]
            }
        ),
        "matchExpressions[].values must fit the operator: list values with In or NotIn",
    ),
    Invalid(
        "network-client-expression-unknown-operator",
        service(
            networkPolicy={
                "allowedClients": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [{"key": "team", "operator": "Equals", "values": ["a"]}]
                        }
                    }
                ]
            }
        ),
        "spec.networkPolicy.allowedClients[0].namespaceSelector.matchExpressions[0].operator",
        "operator",
    ),
]


VALID: dict[str, dict[str, Any]] = {
    "minimal": service(),
    "staging-autoscaled": service(stage="staging", autoscaling={"minReplicas": 1, "maxReplicas": 3}),
    "production-vllm": service(stage="production", resources=GPU_H100, vllm=API_KEY, expectedConcurrency=50),
    "keda-cpu-on-ollama": service(stage="staging", autoscaling={"autoscaler": "keda"}),
    "keda-queue-on-vllm": service(
        stage="production",
        resources=GPU_H100,
        vllm=API_KEY,
        autoscaling={"autoscaler": "keda", "keda": {"serverAddress": PROMETHEUS}},
    ),
    "keda-scale-to-zero-in-dev": service(
        autoscaling={
            "autoscaler": "keda",
            "minReplicas": 0,
            "keda": {"serverAddress": PROMETHEUS, "wakeQuery": WAKE, "cooldownPeriod": 900},
        }
    ),
    "keda-scale-to-zero-vllm-staging": service(
        stage="staging",
        runtime="vllm",
        resources={"gpu": {"count": 1}},
        autoscaling={
            "autoscaler": "keda",
            "minReplicas": 0,
            "maxReplicas": 2,
            "keda": {"serverAddress": PROMETHEUS, "wakeQuery": WAKE},
        },
    ),
    "production-cpu-only-ollama": service(stage="production", resources={"gpu": {"count": 0}}),
    # Without GPUs, runtime vllm is vLLM's CPU image.
    "vllm-on-cpu-in-dev": service(runtime="vllm"),
    "production-vllm-on-cpu": service(
        stage="production",
        runtime="vllm",
        resources={"gpu": {"count": 0}, "cpu": "8", "memory": "16Gi"},
        vllm={**API_KEY, "dtype": "bfloat16", "enforceEager": True},
    ),
    "production-explicit-ollama": service(stage="production", runtime="ollama"),
    "cache-per-pod": service(stage="production", resources=GPU_H100, vllm=API_KEY, cache={"mode": "PerPod"}),
    "cache-shared-read-write-many": service(
        replicas=3, cache={"accessMode": "ReadWriteMany", "storageClassName": "shared-nfs"}
    ),
    "cache-existing-claim": service(replicas=2, cache={"claimName": "llama-weights", "mode": "Shared"}),
    "quantities-as-numbers": service(resources={"cpu": 2, "memory": "8Gi"}, cache={"size": "20Gi"}),
    "tolerations": service(
        scheduling={
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "spot", "value": "true", "effect": "NoExecute", "tolerationSeconds": 60},
            ],
            "nodeSelector": {"pool": "gpu"},
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        }
    ),
    "vllm-extra-args": service(
        runtime="vllm", resources={"gpu": {"count": 2}}, vllm={"extraArgs": ["--enable-prefix-caching"]}
    ),
    "served-name-with-slash-on-ollama": service(
        runtime="ollama", servedModelName="meta-llama/Llama-3.1-8B-Instruct"
    ),
    "served-name-with-at-on-vllm": service(
        runtime="vllm", resources={"gpu": {"count": 1}}, servedModelName="chat@v1"
    ),
    "ollama-private-registry": service(
        model={"name": "smollm2:135m"},
        servedModelName="chat",
        ollama={
            "registry": {
                "host": "registry.internal:5000",
                "namespace": "library",
                "caConfigMapRef": {"name": "registry-ca"},
                "keySecretRef": {"name": "ollama-key"},
            }
        },
    ),
    "ollama-insecure-registry": service(
        ollama={"registry": {"host": "registry.internal:5000", "insecure": True}}
    ),
    "platform-settings": service(
        resources={"ephemeralStorage": "20Gi"},
        ollama={
            "env": {"HTTPS_PROXY": "http://proxy:3128"},
            "envFrom": [{"configMapRef": {"name": "proxy"}}],
        },
        vllm={
            "env": {"HF_ENDPOINT": "https://hf-mirror.internal"},
            "envFrom": [{"secretRef": {"name": "s3", "optional": True}, "prefix": "AWS_"}],
        },
        pod={
            "serviceAccountName": "llm-models-reader",
            "imagePullSecrets": [{"name": "registry-mirror"}],
            "labels": {"sidecar.istio.io/inject": "false"},
            "annotations": {"prometheus.io/scrape": "true"},
            "volumes": [{"name": "mirror-ca", "configMap": {"name": "hf-mirror-ca"}}],
            "volumeMounts": [{"name": "mirror-ca", "mountPath": "/etc/ssl/mirror", "readOnly": True}],
        },
    ),
    "production-lora": service(
        stage="production",
        resources=GPU_H100,
        vllm=API_KEY,
        lora={
            "maxRank": 64,
            "adapters": [
                {"name": "sql", "huggingFaceId": "org/sql-lora"},
                {"name": "support-v2", "huggingFaceId": "org/support-lora", "revision": "v2"},
            ],
        },
    ),
    "source-hugging-face-mirror": service(
        stage="production",
        resources=GPU_H100,
        vllm=API_KEY,
        model={
            "name": "llama3.1:8b",
            "source": {
                "huggingFace": {
                    "id": "meta-llama/Llama-3.1-8B-Instruct",
                    "revision": "main",
                    "endpoint": "https://hf-mirror.internal",
                }
            },
        },
    ),
    "source-pvc": service(
        stage="production",
        resources=GPU_H100,
        vllm=API_KEY,
        model={"name": "llama3.1:8b", "source": {"pvc": {"claimName": "models", "path": "/llama-3.1-8b"}}},
    ),
    "source-s3-minio": service(
        stage="production",
        resources=GPU_H100,
        vllm=API_KEY,
        model={
            "name": "llama3.1:8b",
            "source": {
                "s3": {
                    "url": S3_URL,
                    "endpoint": "http://minio.storage.svc:9000",
                    "region": "eu-west-1",
                    "credentialsSecretRef": {"name": "models-s3"},
                }
            },
        },
    ),
    "source-gcs-workload-identity": service(
        stage="production",
        resources=GPU_H100,
        vllm=API_KEY,
        model={"name": "llama3.1:8b", "source": {"gcs": {"url": "gs://acme_models/llama-3.1-8b"}}},
        pod={"serviceAccountName": "models-reader"},
    ),
    "source-oci": service(
        stage="production",
        resources=GPU_H100,
        vllm=API_KEY,
        model={
            "name": "llama3.1:8b",
            "source": {"oci": {"image": "registry.internal/models/llama-3.1-8b:v1", "path": "/model"}},
        },
    ),
    # runtime auto picks Ollama in dev: the source is vLLM's, so it is accepted (and ignored there).
    "source-s3-in-dev": service(model={"name": "llama3.1:8b", "source": {"s3": {"url": S3_URL}}}),
    "production-lora-sources": service(
        stage="production",
        resources=GPU_H100,
        vllm=API_KEY,
        lora={
            "adapters": [
                {"name": "sql", "huggingFaceId": "org/sql-lora"},
                {"name": "support", "source": {"huggingFace": {"id": "org/support-lora", "revision": "v2"}}},
                {"name": "legal", "source": {"pvc": {"claimName": "adapters", "path": "/legal"}}},
                {
                    "name": "faq",
                    "source": {"s3": {"url": "s3://adapters/faq", "endpoint": "http://minio:9000"}},
                },
                {"name": "hr", "source": {"gcs": {"url": "gs://adapters/hr"}}},
                {"name": "ops", "source": {"oci": {"image": "registry.internal/adapters/ops:v1"}}},
            ]
        },
    ),
    "multi-node-405b": service(
        stage="production",
        model={"name": "llama3.1:405b"},
        resources={"gpu": {"count": 8, "product": "NVIDIA-H100-80GB-HBM3", "nodes": 2}},
        vllm={**API_KEY, "tensorParallelSize": 8, "extraArgs": ["--enable-prefix-caching"]},
    ),
    # A base manifest for every stage: dev runs Ollama on one node, production the nodes it asks.
    "nodes-one-with-ollama": service(runtime="ollama", resources={"gpu": {"count": 1, "nodes": 1}}),
    "routing": service(
        stage="production",
        resources=GPU_H100,
        vllm=API_KEY,
        routing={
            "gatewayRef": {"name": "inference-gateway", "namespace": "gateways", "sectionName": "https"},
            "endpointPickerRef": {"name": "chat-epp", "port": 9002, "failureMode": "FailOpen"},
            "hostnames": ["chat.example.com", "*.llm.example.com"],
        },
    ),
    "custom-model": service(
        model={
            "name": "my-org/my-model",
            "huggingFaceId": "my-org/my-model",
            "architecture": {"parametersBillion": 3.5, "layers": 30, "kvHeads": 4, "headDim": 128},
        }
    ),
}
