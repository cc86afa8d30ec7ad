"""Checking a downloaded file against what the store says its content is.

    Expected     the value to match and how to compute it
    Digest       computed while the bytes are written (and over the kept part of a resumed file)

What each store gives (the first that applies is used):
- S3 full-object checksums (HeadObject with ChecksumMode ENABLED: x-amz-checksum-sha256, -sha1,
  -crc32; base64 of the big-endian digest). CRC32C and CRC64NVME need botocore's optional awscrt
  and are not computed here; such objects fall back to the ETag.
- S3 ETag: the MD5 of the content for an object uploaded in one part, unless it is encrypted with
  SSE-KMS, DSSE-KMS or SSE-C (AWS's "Checking object integrity": then the ETag is no digest); for a
  multipart upload, the MD5 of the parts' MD5s followed by -PARTS, which needs the part size (a
  HeadObject of part 1; of every part where the parts differ in size).
- GCS: the MD5 in the object's metadata (md5Hash, or md5= of x-goog-hash on the XML API);
  composite objects have none (only a CRC32C), and get the size check only.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

CHUNK = 1 << 20
MULTIPART_ETAG = re.compile(r"^([0-9a-f]{32})-([0-9]+)$")
MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Expected:
    algorithm: str  # md5 | sha256 | sha1 | crc32 | s3-multipart-md5
    value: str  # md5: hex; sha256, sha1, crc32: base64 (as S3 sends them); multipart: HEX-PARTS
    source: str  # where the value came from, for the messages: "the ETag", "x-amz-checksum-sha256"
    part_size: int = 0  # multipart: the size of every part but the last
    # multipart: the exact size of every part, asked only when the uniform size did not match.
    part_sizes: Callable[[], list[int]] | None = None


class Digest(Protocol):
    def update(self, data: bytes) -> None: ...

    def result(self) -> str: ...


class _Hash:
    def __init__(self, algorithm: str, encoding: str) -> None:
        self._hash = hashlib.new(algorithm, usedforsecurity=False)
        self._encoding = encoding

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def result(self) -> str:
        digest = self._hash.digest()
        return digest.hex() if self._encoding == "hex" else base64.b64encode(digest).decode()


class _CRC32:
    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: bytes) -> None:
        self._crc = zlib.crc32(data, self._crc)

    def result(self) -> str:
        return base64.b64encode(self._crc.to_bytes(4, "big")).decode()


class _MultipartMD5:
    """The ETag of a multipart upload: MD5 over the concatenated MD5 digests of its parts."""

    def __init__(self, part_sizes: list[int] | int) -> None:
        self._sizes = part_sizes
        self._digests: list[bytes] = []
        self._part = hashlib.md5(usedforsecurity=False)
        self._left = self._size_of(0)

    def _size_of(self, index: int) -> int:
        if isinstance(self._sizes, int):
            return self._sizes
        return self._sizes[index] if index < len(self._sizes) else 1 << 62

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            taken = view[: self._left]
            self._part.update(taken)
            self._left -= len(taken)
            view = view[len(taken) :]
            if self._left == 0:
                self._digests.append(self._part.digest())
                self._part = hashlib.md5(usedforsecurity=False)
                self._left = self._size_of(len(self._digests))

    def result(self) -> str:
        digests = list(self._digests)
        if self._left != self._size_of(len(digests)):  # a last, shorter part
            digests.append(self._part.digest())
        combined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
        return f"{combined}-{len(digests)}"


def digest_for(expected: Expected, part_sizes: list[int] | None = None) -> Digest:
    if expected.algorithm == "md5":
        return _Hash("md5", "hex")
    if expected.algorithm in ("sha256", "sha1"):
        return _Hash(expected.algorithm, "base64")
    if expected.algorithm == "crc32":
        return _CRC32()
    if expected.algorithm == "s3-multipart-md5":
        return _MultipartMD5(part_sizes if part_sizes is not None else expected.part_size)
    raise ValueError(f"no digest {expected.algorithm}")


def file_digest(path: str, expected: Expected, part_sizes: list[int] | None = None) -> str:
    digest = digest_for(expected, part_sizes)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.result()


def matches(path: str, expected: Expected, computed: str) -> bool:
    """Whether `computed` (over the file at `path`) is the expected value; a multipart ETag whose
    parts are not all of the first part's size is computed again with the exact sizes."""
    if computed == expected.value:
        return True
    if expected.algorithm == "s3-multipart-md5" and expected.part_sizes is not None:
        return file_digest(path, expected, expected.part_sizes()) == expected.value
    return False


def from_etag(etag: str, encrypted: bool) -> Expected | None:
    """An S3 ETag that is an MD5 of the content (one part, not KMS or SSE-C), or None."""
    value = etag.strip('"').lower()
    if encrypted:
        return None
    if MD5_ETAG.match(value):
        return Expected("md5", value, "the ETag")
    return None


def md5_from_base64(value: str) -> Expected:
    return Expected("md5", base64.b64decode(value).hex(), "the object's MD5")
