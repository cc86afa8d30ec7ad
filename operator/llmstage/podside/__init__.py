"""Programs that run inside the serving pods, in the runtime's own image, where llmstage is not
installed: the templates inline their text by name (`source`, the templates' `podside_source`),
so each is a file here, linted, typed and unit-tested like the rest of the package, and the
templates keep only the structure around it.

    hub_download.py  vLLM's download-model (download-lora) init container, `python3 -c`: the
                     weights and the LoRA adapters from the Hugging Face Hub into the cache volume
                     (standard library and huggingface_hub only: vLLM's image has both)
    ollama_pull.sh   Ollama's pull-model init container, `/bin/sh -c`: the model into the cache
    ollama_load.sh   the command of Ollama's server container, `/bin/sh -c`: the loader the
                     startup probe waits for, then the server

Each takes its settings from the environment variables the template sets (LLMSTAGE_*, present
or not), never from text spliced into it. The shell scripts are POSIX sh (the Ollama image's
/bin/sh; `make lint` runs shellcheck -s sh on them).

The s3 and gcs download step is not here: it needs botocore and google-auth, so it runs as a
command in llmstage's own image (llmstage.fetch, `python -m llmstage.fetch`).

What a pod gets is the program without its leading documentation (a module's docstring, a
script's header comment): the text is part of every rendered Deployment, which the operator holds
in memory for each service, and the documentation is read here.
"""

from __future__ import annotations

import ast
import functools
from importlib import resources

__all__ = ["program", "source"]


def program(text: str, name: str) -> str:
    """`text`, the file `name`, without its leading documentation and the blank lines after it."""
    lines = text.splitlines(keepends=True)
    if name.endswith(".py"):
        body = ast.parse(text).body
        first = body[0] if body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            lines = lines[first.end_lineno :]
    elif name.endswith(".sh"):
        while lines and lines[0].startswith("#"):
            lines.pop(0)
    else:
        raise ValueError(f"{name}: not a pod-side program (.py or .sh)")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "".join(lines)


@functools.cache
def source(name: str) -> str:
    """The program a template inlines: the file `name` of this package, as `program` gives it."""
    return program(resources.files(__name__).joinpath(name).read_text(encoding="utf-8"), name)
