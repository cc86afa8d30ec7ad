"""Every object under the prefix into the directory vLLM reads, whatever the store.

A file is written beside its final name (NAME.partial-HOST-VERSION) and renamed once it is
complete and checked, so a reader never sees half of one and pods sharing the cache never write
into each other's file. When the body breaks (a connection cut, a read timeout) the transfer asks
for the rest with a Range request pinned to the same object version (If-Match or the generation)
and goes on; a restarted step resumes its own partial file the same way. A checksum mismatch
downloads the object once more, then stops the step.

What was checked is recorded under DIR/.cache/llmstage/ (the place huggingface_hub's local-dir
downloads use for their metadata, DIR/.cache/huggingface/): a restart skips a file whose record
names the object's current version, without reading it again, and downloads it again when the
object changed in the bucket. When the store cannot be reached at all, a restart whose cache holds
every file of the last complete download starts from it, as the Hugging Face step does.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from llmstage.fetch.verify import Digest, Expected, digest_for, file_digest, matches

CHUNK = 1 << 20
# Consecutive failures of one object's transfer without a byte of progress before the step gives up;
# any progress starts the count again.
ATTEMPTS = 5
RECORDS = os.path.join(".cache", "llmstage")
COMPLETE = "complete.json"  # the files of the last download that finished, under RECORDS


class FetchError(Exception):
    """Stops the step: the message says what to check (the kubelet restarts the step)."""


class Unreachable(FetchError):
    """The store could not be asked for its list (the network, or the store failing): a cache that a
    complete download filled is served as it is."""


class Transient(Exception):
    """A network failure worth another try: the transfer resumes where the body broke."""


class Changed(Exception):
    """The object changed (or went) while it was read: its version no longer matches."""


@dataclass(frozen=True)
class RemoteObject:
    key: str
    size: int
    version: str  # what a Range request is pinned to: the ETag (S3) or the generation (GCS)
    expected: Expected | None = None  # when the listing already says (GCS's md5Hash)


class Store(Protocol):
    url: str  # s3://BUCKET/PREFIX/ or gs://..., for the messages
    prefix: str  # the keys' common prefix: "" or ending in "/"

    def objects(self) -> Iterator[RemoteObject]: ...

    def expected(self, obj: RemoteObject) -> Expected | None:
        """What the content must hash to; None where the store says nothing usable."""
        ...

    def read(self, obj: RemoteObject, start: int) -> Iterator[bytes]:
        """The object's bytes from `start`; Transient where the network fails, Changed where the
        object is no longer `obj.version`, FetchError where retrying cannot help."""
        ...


Log = Callable[[str], None]


def _record_path(root: str, relative: str) -> str:
    return os.path.join(root, RECORDS, relative + ".json")


def _read_record(root: str, relative: str) -> dict[str, object] | None:
    try:
        with open(_record_path(root, relative), encoding="utf-8") as f:
            record = json.load(f)
        return record if isinstance(record, dict) else None
    except (OSError, ValueError):
        return None


def _write_json(path: str, content: dict[str, object]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(content, f)
    os.replace(tmp, path)


def _write_record(root: str, relative: str, obj: RemoteObject, expected: Expected | None) -> None:
    record: dict[str, object] = {
        "key": obj.key,
        "size": obj.size,
        "version": obj.version,
        "checked": f"{expected.algorithm} from {expected.source}" if expected else "size",
    }
    _write_json(_record_path(root, relative), record)


def _partial_path(path: str, host: str, version: str) -> str:
    tag = hashlib.sha256(version.encode()).hexdigest()[:12]
    return f"{path}.partial-{host}-{tag}"


def _resume(partial: str, size: int, digest: Digest | None) -> int:
    """Bytes of `partial` kept from an earlier try (fed to `digest`); 0 for a fresh start."""
    try:
        kept = os.path.getsize(partial)
    except OSError:
        return 0
    if kept > size:
        os.unlink(partial)
        return 0
    if digest is not None and kept:
        with open(partial, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    return kept


def _describe(expected: Expected | None) -> str:
    return f"{expected.algorithm} from {expected.source}" if expected else "its size (no checksum)"


class Transfer:
    def __init__(self, store: Store, target: str, host: str, log: Log, retry_delay: float = 1.0) -> None:
        self.store = store
        self.root = os.path.realpath(target)
        self.host = host
        self.log = log
        self.retry_delay = retry_delay

    def run(self) -> int:
        """Fetches what is missing; the number of files under the prefix."""
        try:
            objects = list(self.store.objects())
        except Unreachable as err:
            cached = self._complete_cache()
            if cached is None:
                raise
            self.log(
                f"warning: {err}; the cache holds the {cached} files of the last complete download: "
                "starting from them (the bucket is asked again at the next start)"
            )
            return cached
        done: dict[str, int] = {}
        for obj in objects:
            relative = obj.key[len(self.store.prefix) :]
            if not relative or obj.key.endswith("/"):
                continue  # the folder itself, or a folder marker as consoles create them
            path = os.path.realpath(os.path.join(self.root, relative))
            if not path.startswith(self.root + os.sep) or relative.startswith(RECORDS + os.sep):
                raise FetchError(f"object {obj.key!r} would be written outside {self.root}; refusing")
            self._one(obj, relative, path)
            done[relative] = obj.size
        if done:
            _write_json(os.path.join(self.root, RECORDS, COMPLETE), {"files": done})
        return len(done)

    def _complete_cache(self) -> int | None:
        """The number of files of the last complete download, if every one is still there."""
        try:
            with open(os.path.join(self.root, RECORDS, COMPLETE), encoding="utf-8") as f:
                files = json.load(f)["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        for relative, size in files.items():
            path = os.path.join(self.root, relative)
            if not (os.path.isfile(path) and os.path.getsize(path) == size):
                return None
        return len(files) or None

    def _one(self, obj: RemoteObject, relative: str, path: str) -> None:
        record = _read_record(self.root, relative)
        present = os.path.isfile(path) and os.path.getsize(path) == obj.size
        if present and record is not None and record.get("version") == obj.version:
            self.log(f"{relative} is in the cache")
            return
        expected = obj.expected or self.store.expected(obj)
        # Fetched by an earlier version of this step (which checked sizes only) or put there by
        # hand: checked once, then recorded.
        if present and record is None and expected and matches(path, expected, file_digest(path, expected)):
            self.log(f"{relative} is in the cache (checked: {_describe(expected)})")
            _write_record(self.root, relative, obj, expected)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        for stale in glob.glob(glob.escape(f"{path}.partial-{self.host}-") + "*"):
            if stale != _partial_path(path, self.host, obj.version):
                os.unlink(stale)  # an earlier version of the object
        for attempt in (1, 2):
            partial = _partial_path(path, self.host, obj.version)
            digest = digest_for(expected) if expected else None
            written = self._fetch(obj, relative, partial, digest)
            computed = digest.result() if digest else None
            if expected is None or (computed is not None and matches(partial, expected, computed)):
                os.replace(partial, path)
                _write_record(self.root, relative, obj, expected)
                self.log(f"{relative}: {written} bytes, checked: {_describe(expected)}")
                return
            os.unlink(partial)
            what = (
                f"{self.store.url}{relative}: checksum mismatch: {expected.algorithm} is {computed}, "
                f"{expected.source} says {expected.value}"
            )
            if attempt == 1:
                self.log(f"{what}; downloading it again")
                continue
            raise FetchError(
                f"{what} again on a second download: the store serves other bytes than it recorded "
                "(a corrupt copy on the store, or a proxy changing the body); nothing was kept"
            )

    def _fetch(self, obj: RemoteObject, relative: str, partial: str, digest: Digest | None) -> int:
        written = _resume(partial, obj.size, digest)
        if written:
            self.log(f"{relative}: resuming at byte {written} of {obj.size}")
        else:
            self.log(f"downloading {relative} ({obj.size} bytes)")
        failures = 0
        asked = False
        with open(partial, "ab") as out:
            while True:
                if written == obj.size and (asked or obj.size > 0):
                    return written  # a partial file an earlier try completed
                asked = True
                try:
                    for chunk in self.store.read(obj, written):
                        out.write(chunk)
                        if digest is not None:
                            digest.update(chunk)
                        written += len(chunk)
                        failures = 0
                    if written == obj.size:
                        return written
                    if written > obj.size:
                        raise FetchError(
                            f"{self.store.url}{relative}: got {written} bytes, the listing said {obj.size}"
                        )
                    raise Transient(f"the body ended at byte {written} of {obj.size}")
                except Transient as err:
                    failures += 1
                    out.flush()
                    if failures >= ATTEMPTS:
                        raise FetchError(
                            f"{self.store.url}{relative}: {err}, {failures} times without progress: "
                            "check the endpoint and the network (proxy, NO_PROXY)"
                        ) from None
                    self.log(f"{relative}: {err}; resuming at byte {written} (retry {failures})")
                    time.sleep(self.retry_delay * 2 ** (failures - 1))
                except Changed as err:
                    raise FetchError(
                        f"{self.store.url}{relative} changed while it was downloaded ({err}): the step "
                        "restarts and fetches the new version"
                    ) from None
