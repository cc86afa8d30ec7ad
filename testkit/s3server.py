"""A real S3 server for tests: versitygw (hack/tools/versitygw, built by `make tools`) serving a
temporary directory through its posix backend, on an address of ours.

    with S3Server.started(tmp_path) as s3:     # 127.0.0.1, a free port
        s3.client().create_bucket(Bucket="models")
        s3.upload_dir("models", "llama/", local_dir)
        ...                                     # s3.endpoint, s3.access_key, s3.secret_key

versitygw checks every request's SigV4 signature against its accounts: the root account given at
start and the ones `create_user` adds through its admin API (its internal IAM, without the cache,
so `delete_user` revokes a key at once). Object metadata (ETags, checksums) lives in a sidecar
directory, so any filesystem works; the object's bytes are plain files under the root, which a test
may change behind the server's back (`object_path`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from testkit import wait_until

REPO = Path(__file__).resolve().parents[1]
VERSITYGW = REPO / ".tools" / "bin" / "versitygw"
REGION = "us-east-1"


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class S3Server:
    def __init__(self, root: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        if not VERSITYGW.exists():
            raise FileNotFoundError(
                f"{VERSITYGW} is not built: run make tools (hack/tools/build.sh versitygw)"
            )
        self.root = root
        self.host = host
        self.port = port or free_port(host)
        self.access_key = "llmstage-root"
        self.secret_key = secrets.token_urlsafe(24)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = root / "versitygw.log"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        for sub in ("data", "meta", "iam"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ROOT_ACCESS_KEY_ID": self.access_key,
            "ROOT_SECRET_ACCESS_KEY": self.secret_key,
        }
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(VERSITYGW),
                    "--port",
                    f"{self.host}:{self.port}",
                    "--region",
                    REGION,
                    "--iam-dir",
                    str(self.root / "iam"),
                    "--iam-cache-disable",
                    "--quiet",
                    "posix",
                    "--sidecar",
                    str(self.root / "meta"),
                    str(self.root / "data"),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._answers, timeout=30, interval=0.1, what=f"versitygw on {self.endpoint}")

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"versitygw exited {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}"
            )
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        self.process = None

    @classmethod
    @contextmanager
    def started(cls, root: Path, host: str = "127.0.0.1", port: int | None = None) -> Iterator[S3Server]:
        server = cls(root, host, port)
        server.start()
        try:
            yield server
        finally:
            server.stop()

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> Any:
        import botocore.session
        from botocore.config import Config

        return botocore.session.Session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            # No checksum unless a test asks for one (ChecksumAlgorithm): objects with their ETag only.
            config=Config(
                s3={"addressing_style": "path"},
                retries={"mode": "standard"},
                request_checksum_calculation="when_required",
            ),
        )

    def upload_dir(self, bucket: str, prefix: str, directory: Path, **put: Any) -> list[str]:
        """Every file under `directory` as PREFIX/RELATIVE; the keys."""
        client = self.client()
        keys = []
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            key = prefix + str(path.relative_to(directory))
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), **put)
            keys.append(key)
        return keys

    def object_path(self, bucket: str, key: str) -> Path:
        """Where the posix backend keeps the object's bytes."""
        return self.root / "data" / bucket / key

    def _admin(self, *args: str) -> None:
        res = subprocess.run(
            [
                str(VERSITYGW),
                "admin",
                "--access",
                self.access_key,
                "--secret",
                self.secret_key,
                "--region",
                REGION,
                "--endpoint-url",
                self.endpoint,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, f"versitygw admin {args[0]}: {res.stdout}{res.stderr}"

    def create_user(self, access_key: str, secret_key: str, role: str = "admin") -> None:
        """An account of the server's IAM; the admin role may read every bucket."""
        self._admin("create-user", "--access", access_key, "--secret", secret_key, "--role", role)

    def delete_user(self, access_key: str) -> None:
        self._admin("delete-user", "--access", access_key)


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


class CutOnce:
    """A TCP relay in front of a server that cuts one response mid-body: the first connection whose
    bytes to the client pass `after` is closed right there (both ways), once; every other connection
    is passed through. `requests` holds what clients sent, to see the Range requests that follow.
    `on_cut` runs in the relay before the client sees the connection end (what happens meanwhile,
    e.g. credentials expiring, is in place for the request that resumes)."""

    def __init__(
        self, upstream: tuple[str, int], after: int, on_cut: Callable[[], None] | None = None
    ) -> None:
        self.upstream = upstream
        self.after = after
        self.on_cut = on_cut
        self.armed = True
        self.cuts = 0
        self.sent: list[bytes] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> str:
        with self._lock:
            return b"".join(self.sent).decode("latin-1")

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        threading.Thread(target=self._to_server, args=(client, upstream), daemon=True).start()
        passed = 0
        try:
            while data := upstream.recv(65536):
                with self._lock:
                    cut = self.armed and passed + len(data) > self.after
                    if cut:
                        self.armed = False
                        self.cuts += 1
                if cut:
                    client.sendall(data[: self.after - passed])
                    if self.on_cut is not None:
                        self.on_cut()
                    break
                client.sendall(data)
                passed += len(data)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def _to_server(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                with self._lock:
                    self.sent.append(data)
                upstream.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self._listener.close()
