"""The operator's client (controller.kube over aiohttp) and the CLI's (kubeapi.rest over httpx)
against a real local HTTPS server that requires a client certificate signed by its CA, as the
API server does: the kubeconfig's inline CA and client certificate are used, the token is
renewed once on a 401, and the Status body's message reaches the error. The integration tiers
run the same clients against the real control plane."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import ssl
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from llmstage.controller.kube import KINDS, ApiError, Kube
from llmstage.kubeapi import credentials
from llmstage.kubeapi.rest import RestClient

CONFIG_MAP = KINDS[("v1", "ConfigMap")]


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _issue(
    name: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    ip: str | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), False
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


class Pki:
    def __init__(self, tmp_path: Path) -> None:
        self.ca, ca_key = _issue("test-ca", None, ca=True)
        self.server, server_key = _issue("api", (self.ca.subject, ca_key), ip="127.0.0.1")
        self.client, self.client_key = _issue("llmstage-test-client", (self.ca.subject, ca_key))
        for name, text in [
            ("ca.crt", _pem(self.ca)),
            ("server.crt", _pem(self.server)),
            ("server.key", _key_pem(server_key)),
        ]:
            (tmp_path / name).write_text(text)
        self.server_context = ssl.create_default_context(
            ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.crt")
        )
        self.server_context.verify_mode = ssl.CERT_REQUIRED
        self.server_context.load_cert_chain(str(tmp_path / "server.crt"), str(tmp_path / "server.key"))


class ApiServer:
    """Answers GETs of ConfigMaps with who asked (the client certificate's CN and the token);
    refuses tokens other than `valid` with 401, and the name `forbidden` with a Status 403."""

    def __init__(self, valid: str) -> None:
        self.valid, self.seen_tokens = valid, list[str]()

    async def handle(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.seen_tokens.append(token)
        if token != self.valid:
            return web.json_response(
                {"kind": "Status", "reason": "Unauthorized", "message": "Unauthorized"}, status=401
            )
        if request.match_info["name"] == "forbidden":
            body = {"kind": "Status", "reason": "Forbidden", "message": 'configmaps "forbidden" is forbidden'}
            return web.json_response(body, status=403)
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(pair[0] for pair in (peer or {}).get("subject", ()))
        return web.json_response({"kind": "ConfigMap", "data": {"cn": subject.get("commonName", "")}})


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


async def serve(server: ApiServer, context: ssl.SSLContext) -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/configmaps/{name}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()


def kubeconfig(tmp_path: Path, pki: Pki, port: int, user: dict[str, Any]) -> Path:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    cluster = {"server": f"https://127.0.0.1:{port}", "certificate-authority-data": b64(_pem(pki.ca))}
    user = {
        "client-certificate-data": b64(_pem(pki.client)),
        "client-key-data": b64(_key_pem(pki.client_key)),
        **user,
    }
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "c", "user": user}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "c"}}],
            }
        )
    )
    return path


def rotating_plugin(tmp_path: Path) -> dict[str, Any]:
    """An exec plugin that answers token-1, then token-2, ... (a credential that was revoked)."""
    counter, script = tmp_path / "count", tmp_path / "plugin.py"
    counter.write_text("0")
    script.write_text(
        f"#!{sys.executable}\nimport json\nn = int(open({str(counter)!r}).read()) + 1\n"
        f"open({str(counter)!r}, 'w').write(str(n))\n"
        "print(json.dumps({'kind': 'ExecCredential', 'status': {'token': f'token-{n}'}}))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script)}}


def test_the_operators_client_uses_the_ca_and_client_certificate_and_renews_on_401(
    tmp_path: Path, pki: Pki
) -> None:
    server = ApiServer(valid="token-2")

    async def scenario() -> None:
        async for port in serve(server, pki.server_context):
            kube = await Kube.connect(str(kubeconfig(tmp_path, pki, port, rotating_plugin(tmp_path))))
            try:
                got = await kube.get(CONFIG_MAP, "ns", "x")
                assert got is not None and got["data"]["cn"] == "llmstage-test-client"
                assert server.seen_tokens == ["token-1", "token-2"]  # 401, the plugin again, then 200
                with pytest.raises(ApiError) as err:
                    await kube.get(CONFIG_MAP, "ns", "forbidden")
                assert (err.value.status, err.value.reason) == (403, "Forbidden")
                assert err.value.message == 'configmaps "forbidden" is forbidden'
            finally:
                await kube.close()

    asyncio.run(scenario())


def test_a_server_whose_certificate_the_ca_did_not_sign_is_refused(tmp_path: Path, pki: Pki) -> None:
    (tmp_path / "other").mkdir()
    other = Pki(tmp_path / "other")  # another CA's server certificate

    async def scenario() -> None:
        async for port in serve(ApiServer(valid="t"), other.server_context):
            kube = await Kube.connect(str(kubeconfig(tmp_path, pki, port, {"token": "t"})))
            kube.retry.attempts = 1
            try:
                with pytest.raises(ApiError, match=r"Unreachable.*CERTIFICATE_VERIFY_FAILED"):
                    await kube.get(CONFIG_MAP, "ns", "x")
            finally:
                await kube.close()

    asyncio.run(scenario())


def test_the_clis_client_uses_the_same_credentials_and_renews_on_401(tmp_path: Path, pki: Pki) -> None:
    server = ApiServer(valid="token-2")

    async def scenario() -> None:
        async for port in serve(server, pki.server_context):
            path = kubeconfig(tmp_path, pki, port, rotating_plugin(tmp_path))

            def cli_calls(path: Path = path) -> None:
                client = RestClient(credentials.from_kubeconfig(str(path)))
                try:
                    got = client.get(CONFIG_MAP, "ns", "x")
                    assert got is not None and got["data"]["cn"] == "llmstage-test-client"
                    with pytest.raises(ApiError, match="403 Forbidden"):
                        client.get(CONFIG_MAP, "ns", "forbidden")
                finally:
                    client.close()

            await asyncio.to_thread(cli_calls)
            assert server.seen_tokens[:2] == ["token-1", "token-2"]

    asyncio.run(scenario())
