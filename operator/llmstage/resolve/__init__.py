"""The resolve step: LLMService -> Resolved, pure.

    resolve(service, catalog) -> Resolved      raises SpecError

resolver     stage defaults, sizing and the SpecError checks (the entry point)
decision     the article's Ollama-or-vLLM decision table
catalog      model names <-> Hugging Face ids and model shapes
fit          memory fit: weights + KV cache + overhead against the GPU or container
mistakes     the article's common mistakes, as warnings
resolved     Resolved, the frozen contract handed to render/
"""

from llmstage.resolve.resolver import SpecError, resolve

__all__ = ["SpecError", "resolve"]
