"""The resolve step: LLMService -> Resolved, pure.

    resolve(service, catalog) -> Resolved      raises SpecError

resolver     stage defaults, replicas, resources and memory fit, model cache (the entry point)
ollama, vllm each runtime's settings and the SpecError checks of what it would refuse
decision     the article's Ollama-or-vLLM decision table
catalog      model names <-> Hugging Face ids and model shapes
fit          memory fit: weights + KV cache + overhead against the GPU or container
mistakes     the article's common mistakes, as warnings
resolved     Resolved, the frozen contract handed to render/
errors       SpecError
sizing       the fewest GPUs per product on which vLLM fits (`recommend`, `pipeline init`)
"""

from llmstage.resolve.errors import SpecError
from llmstage.resolve.resolver import resolve

__all__ = ["SpecError", "resolve"]
