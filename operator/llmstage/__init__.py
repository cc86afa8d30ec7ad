"""llmstage: one LLMService resource -> Ollama in dev/staging, GPU-scheduled vLLM in production."""

from importlib.metadata import PackageNotFoundError, version

# pyproject.toml is the one place the version is written; the installed package's metadata
# carries it (tests/unit/test_version.py holds the chart and the image label to it).
try:
    __version__ = version("llmstage")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
