"""One replica over several GPU nodes: how many, and what vLLM would refuse in that layout.

    check_layout(spec, runtime, runtime_reason, gpu, vllm) -> VLLMSettings | None    raises SpecError
    fewest_nodes(fit_on) -> int | None        the smallest node count the memory fit accepts

A multi-node replica is tensor parallel within a node (each node's GPUs share fast links) and
pipeline parallel across nodes, one stage per node: vLLM's documented multi-node layout
(docs/serving/parallelism_scaling.md at 0.32.0: "set tensor_parallel_size to the number of GPUs per
node and pipeline_parallel_size to the number of nodes"). The nodes are chosen by the spec
(spec.resources.gpu.nodes) or, when it is unset and the model does not even start on the 8 GPUs
one node holds, by the memory fit (`fewest_nodes`). Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from llmstage.api.constants import MAX_NODES, MULTI_NODE_VLLM_FLAG_PATTERN, MULTI_NODE_VLLM_FLAGS, Runtime
from llmstage.api.spec import LLMServiceSpec
from llmstage.resolve.errors import SpecError
from llmstage.resolve.fit import MAX_GPUS_PER_POD, FitReason, FitReport
from llmstage.resolve.resolved import GPU, VLLMSettings


def asked_nodes(spec: LLMServiceSpec) -> int | None:
    """spec.resources.gpu.nodes, None when unset (the memory fit may then choose)."""
    gpu = spec.resources.gpu if spec.resources else None
    return gpu.nodes if gpu else None


def check_layout(
    spec: LLMServiceSpec, runtime: Runtime, runtime_reason: str, gpu: GPU | None, vllm: VLLMSettings | None
) -> VLLMSettings | None:
    """The vLLM settings of a replica over gpu.nodes nodes; SpecError for what cannot run so.

    The API rejects these combinations where the spec names the runtime; this catches the rest
    (runtime auto chose Ollama, or the memory fit chose the nodes)."""
    nodes = gpu.nodes if gpu else 1
    if nodes <= 1:
        return vllm
    if runtime is Runtime.OLLAMA or vllm is None or gpu is None:
        raise SpecError(
            "spec.resources.gpu.nodes",
            f"{nodes} nodes per replica needs vLLM, and the runtime is Ollama ({runtime_reason}), which "
            "serves a model from one pod: remove nodes (or set it to 1) in this stage, or set runtime vllm",
        )
    if vllm.tensor_parallel_size != gpu.count:
        raise SpecError(
            "spec.vllm.tensorParallelSize",
            f"{vllm.tensor_parallel_size} with {nodes} nodes of {gpu.count} GPUs: tensor parallelism stays "
            "within a node and the nodes are pipeline stages, so it must equal spec.resources.gpu.count; "
            "remove tensorParallelSize or set it to count",
        )
    managed = [a for a in vllm.extra_args if re.match(MULTI_NODE_VLLM_FLAG_PATTERN, a)]
    if managed:
        raise SpecError(
            "spec.vllm.extraArgs",
            f"{', '.join(managed)}: with {nodes} nodes per replica llmstage sets "
            f"{', '.join('--' + f for f in MULTI_NODE_VLLM_FLAGS)} itself (tensor parallel within a node, "
            "pipeline parallel across nodes, vLLM's multiprocessing executor); remove them",
        )
    return replace(vllm, pipeline_parallel_size=nodes)


def may_choose_nodes(gpu: GPU | None, asked: int | None) -> bool:
    """The memory fit may spread a replica over nodes: vLLM on the most GPUs one node holds, and the
    spec leaves spec.resources.gpu.nodes unset."""
    return asked is None and gpu is not None and gpu.count >= MAX_GPUS_PER_POD


def fewest_nodes(fit_on: Callable[[int], FitReport]) -> int | None:
    """The fewest nodes (2 or more) on which the model fits; failing that, the fewest on which vLLM
    at least starts (its KV cache then holds fewer users). None: not even MAX_NODES nodes do."""
    starts: int | None = None
    for nodes in range(2, MAX_NODES + 1):
        report = fit_on(nodes)
        if report.fits:
            return nodes
        if starts is None and report.reason is FitReason.KV_CACHE_LIMITS_CONCURRENCY:
            starts = nodes
    return starts
