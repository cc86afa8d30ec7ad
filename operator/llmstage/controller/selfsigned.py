"""A self-signed serving certificate for the metrics endpoint when `llmstage run` is given none.

What controller-runtime's secure metrics server does without a CertDir: the scraper cannot verify
it (the ServiceMonitor then skips verification), but the token it sends is encrypted, which is the
point. A certificate of your own (cert-manager, `--metrics-cert-dir`) lets Prometheus verify it.
The certificate is made in a child process (`python -m llmstage.controller.selfsigned DIR HOST...`):
importing `cryptography` costs resident memory that the operator would otherwise keep for its
whole life to use it once (docs/benchmarks.md).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

VALIDITY = datetime.timedelta(days=365)


def self_signed_pem(hosts: list[str]) -> tuple[bytes, bytes]:
    """(certificate, private key) in PEM, ECDSA P-256, for `hosts` (DNS names or IP addresses)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "llmstage-metrics")])
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(cert_dir: str | None, hosts: list[str]) -> ssl.SSLContext:
    """A TLS 1.2+ server context from cert_dir/tls.crt and tls.key (a kubernetes.io/tls Secret
    mounted as a directory), or from a fresh self-signed certificate for `hosts`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_dir:
        context.load_cert_chain(Path(cert_dir) / "tls.crt", Path(cert_dir) / "tls.key")
        return context
    # load_cert_chain reads files only; they live for this call, readable by this user alone.
    with tempfile.TemporaryDirectory(prefix="llmstage-metrics-") as tmp:
        made = subprocess.run(
            [sys.executable, "-m", __name__, tmp, *hosts], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            raise OSError(f"could not make a self-signed certificate: {made.stderr.strip()[-500:]}")
        context.load_cert_chain(Path(tmp) / "tls.crt", Path(tmp) / "tls.key")
    return context


def write_self_signed(directory: Path, hosts: list[str]) -> None:
    cert, key = self_signed_pem(hosts)
    (directory / "tls.crt").write_bytes(cert)
    key_path = directory / "tls.key"
    key_path.touch(mode=0o600)
    key_path.write_bytes(key)


if __name__ == "__main__":
    write_self_signed(Path(sys.argv[1]), sys.argv[2:])
