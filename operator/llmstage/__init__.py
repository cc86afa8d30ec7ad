"""llmstage: one LLMService resource -> Ollama in dev/staging, GPU-scheduled vLLM in production."""

__version__ = "0.1.0"
