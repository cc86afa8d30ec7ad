"""`python -m llmstage.fetch`: the download step's entry point (settings from the environment)."""

from __future__ import annotations

import os
import sys

from llmstage.fetch.settings import Source, hostname, source_from
from llmstage.fetch.transfer import FetchError, Store, Transfer


def log(message: str) -> None:
    print(f"llmstage: {message}", flush=True)


def store_for(source: Source) -> Store:
    # Imported here: each store loads only its own client library.
    if source.kind == "gcs" and source.keys is None:
        from llmstage.fetch.gcs import GCSStore

        return GCSStore(source, log)
    from llmstage.fetch.s3 import S3Store

    return S3Store(source, log)


def run(source: Source, store: Store | None = None, retry_delay: float = 1.0) -> None:
    store = store or store_for(source)
    log(f"downloading {source.url} into {source.target}")
    os.makedirs(source.target, exist_ok=True)
    count = Transfer(store, source.target, hostname(), log, retry_delay).run()
    if count == 0:
        raise FetchError(f"no objects under {source.url}: check {source.field}'s url")
    if not os.path.isfile(os.path.join(source.target, source.expected_file)):
        log(f"warning: no {source.expected_file} under {source.url}: vLLM will not find what it needs there")
    log(f"{count} files of {source.url} are in the cache")


def main() -> None:
    try:
        run(source_from(os.environ))
    except FetchError as err:
        sys.exit(f"llmstage: {err}")
