"""Specs that run, but weaken the pods' security: reported as Findings beside the common mistakes.

    hardening_findings(spec, runtime, model) -> list[Finding]      pure; called by `resolve`

They end up in the FollowsBestPractices condition and an Event, like the article's mistakes:
the user may have good reasons, so nothing is refused.
"""

from __future__ import annotations

from llmstage.api.constants import Runtime
from llmstage.api.spec import LLMServiceSpec
from llmstage.resolve.resolved import Finding, ModelInfo

# vLLM 0.12.0's flag (EngineArgs.trust_remote_code); argparse also accepts the underscore spelling.
TRUST_REMOTE_CODE = ("--trust-remote-code", "--trust_remote_code")


def trusts_remote_code(extra_args: tuple[str, ...] | list[str]) -> bool:
    return any(
        a in TRUST_REMOTE_CODE or a.startswith(tuple(f"{f}=" for f in TRUST_REMOTE_CODE)) for a in extra_args
    )


def hardening_findings(spec: LLMServiceSpec, runtime: Runtime, model: ModelInfo) -> list[Finding]:
    out: list[Finding] = []
    if runtime == Runtime.VLLM and spec.vllm is not None and trusts_remote_code(spec.vllm.extra_args):
        repository = model.hugging_face_id or "the model source"
        pinned = (
            f"pinned to revision {model.revision}"
            if model.revision
            else "not pinned: set spec.model.revision to the commit you reviewed"
        )
        out.append(
            Finding(
                "TrustRemoteCode",
                f"spec.vllm.extraArgs has --trust-remote-code: vLLM runs the Python code of {repository} "
                f"({pinned}) inside the server, with the pod's ServiceAccount, network access and API key. "
                "Review that code, or remove the flag if vLLM supports the architecture natively",
            )
        )
    return out
