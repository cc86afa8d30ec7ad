"""spec.autoscaling: who scales the replicas (a HorizontalPodAutoscaler or KEDA) and on what."""

from __future__ import annotations

from typing import ClassVar

from llmstage.api.base import ApiModel, CelRule
from llmstage.api.constants import DEFAULT_QUEUE_METRIC, MAX_REPLICAS, AutoscalerChoice, ScaleMetricChoice
from pydantic import Field

# Where KEDA finds Prometheus: an http(s) URL without whitespace.
PROMETHEUS_URL = r"^https?://[^\s]+$"
MAX_COOLDOWN_SECONDS = 86_400


class KedaSpec(ApiModel):
    """How KEDA reads the metrics (spec.autoscaling.autoscaler keda)."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="(!has(self.query) && !has(self.wakeQuery)) || has(self.serverAddress)",
            message=(
                "spec.autoscaling.keda.query and wakeQuery are PromQL that KEDA sends to Prometheus: "
                "set spec.autoscaling.keda.serverAddress to the Prometheus URL, "
                "e.g. http://prometheus-operated.monitoring.svc:9090"
            ),
            check=lambda s: (s.query is None and s.wake_query is None) or s.server_address is not None,
            field_path=".serverAddress",
        ),
    )

    server_address: str | None = Field(
        default=None,
        max_length=1024,
        pattern=PROMETHEUS_URL,
        description=(
            "Prometheus URL KEDA's Prometheus trigger queries, e.g. "
            "http://prometheus-operated.monitoring.svc:9090. Required on vLLM (the queue metric)."
        ),
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description=(
            "PromQL for the queue, replacing the default sum of vllm:num_requests_waiting over this "
            "service's pods; KEDA divides its value by the replica count and compares it with "
            "spec.autoscaling.target."
        ),
    )
    wake_query: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description=(
            "PromQL that is above 0 while clients send requests, measured outside the serving pods "
            "(ingress, gateway or load-balancer metrics), e.g. "
            'sum(rate(nginx_ingress_controller_requests{service="chat"}[2m])). While it is above 0 KEDA '
            "keeps at least one pod; it is what wakes a service scaled to zero. Required with minReplicas 0."
        ),
    )
    cooldown_period: int | None = Field(
        default=None,
        ge=0,
        le=MAX_COOLDOWN_SECONDS,
        description=(
            "Seconds without activity (queue and wakeQuery both 0) before KEDA scales to zero; "
            "only used with minReplicas 0. Default: KEDA's, 300."
        ),
    )


class AutoscalingSpec(ApiModel):
    """Let an autoscaler own the replica count. Mutually exclusive with spec.replicas."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule(
            rule="!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
            message=(
                "spec.autoscaling.minReplicas must be <= spec.autoscaling.maxReplicas: "
                "raise maxReplicas or lower minReplicas"
            ),
            check=lambda s: (
                s.min_replicas is None or s.max_replicas is None or s.min_replicas <= s.max_replicas
            ),
            field_path=".minReplicas",
        ),
        CelRule(
            rule="self.autoscaler == 'keda' || !has(self.minReplicas) || self.minReplicas >= 1",
            message=(
                "spec.autoscaling.minReplicas 0 (scale to zero) needs autoscaler keda: a "
                "HorizontalPodAutoscaler cannot scale to zero; set spec.autoscaling.autoscaler keda "
                "(KEDA must be installed) or minReplicas >= 1"
            ),
            check=lambda s: (
                s.autoscaler == AutoscalerChoice.KEDA or s.min_replicas is None or s.min_replicas >= 1
            ),
            field_path=".minReplicas",
        ),
        CelRule(
            rule="self.autoscaler == 'keda' || !has(self.keda)",
            message=(
                "spec.autoscaling.keda is only read with autoscaler keda: set "
                "spec.autoscaling.autoscaler keda, or remove spec.autoscaling.keda"
            ),
            check=lambda s: s.autoscaler == AutoscalerChoice.KEDA or s.keda is None,
            field_path=".keda",
        ),
        CelRule(
            rule=(
                "!has(self.minReplicas) || self.minReplicas != 0 || "
                "(has(self.keda) && has(self.keda.wakeQuery))"
            ),
            message=(
                "spec.autoscaling.minReplicas 0 needs spec.autoscaling.keda.wakeQuery: with no pod "
                "running there is no queue or CPU to measure, so nothing would scale the service up "
                "again; set wakeQuery (and serverAddress) to a PromQL query that counts requests before "
                "they reach the pods, e.g. at the ingress or gateway"
            ),
            check=lambda s: s.min_replicas != 0 or (s.keda is not None and s.keda.wake_query is not None),
            field_path=".keda",
        ),
    )

    autoscaler: AutoscalerChoice = Field(
        default=AutoscalerChoice.HPA,
        description=(
            "Who scales: hpa (a HorizontalPodAutoscaler; the queue metric needs a metrics adapter such "
            "as prometheus-adapter, see manifests/prometheus-adapter-rules.yaml) or keda (a KEDA "
            "ScaledObject that reads Prometheus itself; KEDA must be installed; allows minReplicas 0 "
            "in dev and staging)."
        ),
    )
    min_replicas: int | None = Field(
        default=None,
        ge=0,
        le=MAX_REPLICAS,
        description=(
            "Fewest replicas. Default: 1 in dev and staging, 2 in production. 0 (scale to zero) only "
            "with autoscaler keda, a keda.wakeQuery, and in stages dev and staging."
        ),
    )
    max_replicas: int | None = Field(
        default=None,
        ge=1,
        le=MAX_REPLICAS,
        description="Most replicas. Default: 2 in dev and staging, 8 in production (at least minReplicas).",
    )
    metric: ScaleMetricChoice = Field(
        default=ScaleMetricChoice.AUTO,
        description=(
            "What to scale on: queue (vLLM's waiting requests per pod, through a metrics adapter or "
            "KEDA's Prometheus trigger), cpu (utilisation; Ollama has no metrics endpoint), or auto "
            "(queue on vLLM, cpu on Ollama)."
        ),
    )
    target: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description=(
            "Per-pod target: waiting requests for queue (default 3), "
            "utilisation percent for cpu (default 70)."
        ),
    )
    queue_metric_name: str = Field(
        default=DEFAULT_QUEUE_METRIC,
        min_length=1,
        max_length=253,
        pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
        description=(
            "Pods metric the adapter exposes for queue depth (adapters may rename vLLM's metric); "
            "autoscaler hpa only (KEDA queries Prometheus, see keda.query)."
        ),
    )
    keda: KedaSpec | None = Field(
        default=None, description="KEDA's Prometheus settings (autoscaler keda only)."
    )
