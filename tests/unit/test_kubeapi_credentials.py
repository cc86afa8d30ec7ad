"""llmstage.kubeapi.credentials: kubeconfig files and the pod's ServiceAccount read as kubectl
reads them, and Auth keeping tokens fresh. Exec plugins here are real programs (small Python
scripts) run by the real subprocess call; nothing is patched."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmstage.kubeapi import credentials
from llmstage.kubeapi.credentials import Auth, Credentials
from llmstage.kubeapi.errors import ConfigError
from llmstage.kubeapi.exec_plugin import ExecConfig


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubeconfig(
    path: Path,
    *,
    user: dict[str, Any],
    cluster: dict[str, Any] | None = None,
    name: str = "c",
    current: str | None = "c",
    namespace: str | None = None,
) -> Path:
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    data: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster or {"server": "https://10.0.0.1:6443/"}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": context}],
    }
    if current:
        data["current-context"] = current
    path.write_text(yaml.safe_dump(data))
    return path


def plugin(tmp_path: Path, body: str) -> Path:
    """An exec plugin: a Python script that prints what `body` computes as `credential`."""
    script = tmp_path / "plugin.py"
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\n{body}\nprint(json.dumps(credential))\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_a_context_with_inline_data_and_a_namespace(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "config",
        cluster={
            "server": "https://api:6443/",
            "certificate-authority-data": b64("CA PEM"),
            "tls-server-name": "k",
        },
        user={"client-certificate-data": b64("CERT"), "client-key-data": b64("KEY")},
        namespace="team-a",
    )
    found = credentials.from_kubeconfig(str(path))
    assert (found.server, found.ca_data, found.cert_data, found.key_data) == (
        "https://api:6443",
        "CA PEM",
        "CERT",
        "KEY",
    )
    assert (found.ca_file, found.cert_file, found.key_file, found.token) == (None, None, None, None)
    assert found.namespace == "team-a" and found.tls_server_name == "k"
    assert str(path) in found.source and "context c" in found.source


def test_relative_file_paths_start_at_the_kubeconfigs_folder(tmp_path: Path) -> None:
    (tmp_path / "kube").mkdir()
    path = kubeconfig(
        tmp_path / "kube" / "config",
        cluster={"server": "https://api", "certificate-authority": "ca.crt"},
        user={"client-certificate": "certs/me.crt", "client-key": "/abs/me.key", "tokenFile": "tok"},
    )
    found = credentials.from_kubeconfig(str(path))
    assert found.ca_file == str(tmp_path / "kube" / "ca.crt")
    assert found.cert_file == str(tmp_path / "kube" / "certs" / "me.crt")
    assert found.key_file == "/abs/me.key"
    assert found.token_file == str(tmp_path / "kube" / "tok")


def test_a_kubeconfig_list_is_merged_as_kubectl_merges_it(tmp_path: Path) -> None:
    first = kubeconfig(tmp_path / "a", user={"token": "from-a"}, name="shared", current=None)
    second = kubeconfig(tmp_path / "b", user={"token": "from-b"}, name="shared", current="shared")
    env = {"KUBECONFIG": os.pathsep.join([str(tmp_path / "missing"), str(first), str(second)])}
    found = credentials.from_kubeconfig(None, None, env)
    # current-context from the first file that sets one (b); the entry named shared from a.
    assert found.token == "from-a"
    names, current = credentials.contexts(None, env)
    assert [c["name"] for c in names] == ["shared"] and current is not None and current["name"] == "shared"


@pytest.mark.parametrize(
    ("context", "expected"),
    [("other", "has no context other"), (None, "has no current-context: pass --context NAME")],
)
def test_a_missing_context_is_named(tmp_path: Path, context: str | None, expected: str) -> None:
    path = kubeconfig(tmp_path / "config", user={"token": "t"}, current=None)
    with pytest.raises(ConfigError, match=expected):
        credentials.from_kubeconfig(str(path), context)


def test_legacy_auth_providers_are_refused_with_the_fix_but_an_oidc_id_token_is_used(tmp_path: Path) -> None:
    gcp = kubeconfig(tmp_path / "gcp", user={"auth-provider": {"name": "gcp", "config": {}}})
    with pytest.raises(ConfigError, match="auth-provider gcp is not supported: use its exec plugin"):
        credentials.from_kubeconfig(str(gcp))
    oidc = kubeconfig(
        tmp_path / "oidc", user={"auth-provider": {"name": "oidc", "config": {"id-token": "jwt"}}}
    )
    assert credentials.from_kubeconfig(str(oidc)).token == "jwt"


def test_headers_bearer_then_basic(tmp_path: Path) -> None:
    assert Auth(Credentials("https://x", "t", token="abc")).headers() == {"Authorization": "Bearer abc"}
    basic = Auth(Credentials("https://x", "t", username="u", password="p")).headers()
    assert basic == {"Authorization": "Basic " + b64("u:p")}
    assert Auth(Credentials("https://x", "t")).headers() == {}


def test_exec_plugins_get_the_exec_info_their_env_and_args(tmp_path: Path) -> None:
    script = plugin(
        tmp_path,
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "credential = {'apiVersion': info['apiVersion'], 'kind': 'ExecCredential', 'status': {'token': "
        "'|'.join([info['spec']['cluster']['server'], str(info['spec']['interactive']),\n"
        "          os.environ['REGION'], *sys.argv[1:]])}}",
    )
    path = kubeconfig(
        tmp_path / "config",
        cluster={"server": "https://eks:443"},
        user={
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": str(script),
                "args": ["token", "-i", "prod"],
                "env": [{"name": "REGION", "value": "eu-west-1"}],
                "provideClusterInfo": True,
            }
        },
    )
    auth = Auth(credentials.from_kubeconfig(str(path)))
    assert auth.headers() == {"Authorization": "Bearer https://eks:443|False|eu-west-1|token|-i|prod"}


def test_an_exec_credential_is_renewed_when_it_expires_and_on_demand(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    counter.write_text("0")
    script = plugin(
        tmp_path,
        f"n = int(open({str(counter)!r}).read()) + 1\nopen({str(counter)!r}, 'w').write(str(n))\n"
        "expiry = '2000-01-01T00:00:00Z' if n == 1 else '2999-01-01T00:00:00Z'\n"
        "status = {'token': f't{n}', 'expirationTimestamp': expiry}\n"
        "credential = {'kind': 'ExecCredential', 'status': status}",
    )
    config = ExecConfig(command=str(script), api_version="client.authentication.k8s.io/v1")
    auth = Auth(Credentials("https://x", "test", exec=config))
    assert auth.headers() == {"Authorization": "Bearer t1"}
    # t1 expired in 2000: the next use runs the plugin again; t2 lasts, so no third run.
    assert auth.headers() == {"Authorization": "Bearer t2"}
    assert auth.headers() == {"Authorization": "Bearer t2"} and counter.read_text() == "2"
    auth.refresh(force=True)  # what a 401 does
    assert auth.headers() == {"Authorization": "Bearer t3"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "sys.stderr.write('error: no SSO session\\n'); sys.exit(3)\ncredential = {}",
            r"failed \(exit 3\): error: no SSO session",
        ),
        ("credential = {'status': {}}", "neither a token nor a client certificate"),
        ("credential = 'nonsense'", "not an ExecCredential"),
    ],
)
def test_a_failing_plugin_is_one_line_naming_it(tmp_path: Path, body: str, expected: str) -> None:
    config = ExecConfig(command=str(plugin(tmp_path, body)), api_version="client.authentication.k8s.io/v1")
    with pytest.raises(ConfigError, match=expected) as err:
        Auth(Credentials("https://x", "test", exec=config)).headers()
    assert "plugin.py" in str(err.value) and "\n" not in str(err.value)


def test_a_missing_plugin_says_its_install_hint(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "config",
        user={
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "no-such-gke-gcloud-auth-plugin",
                "installHint": "install it: gcloud components install gke-gcloud-auth-plugin",
            }
        },
    )
    with pytest.raises(ConfigError, match="not found: install it: gcloud components install"):
        Auth(credentials.from_kubeconfig(str(path))).refresh()


def test_an_exec_section_without_a_known_api_version_is_refused(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "config",
        user={"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}},
    )
    with pytest.raises(
        ConfigError, match=r"exec apiVersion client\.authentication\.k8s\.io/v1alpha1 is not one of"
    ):
        credentials.from_kubeconfig(str(path))


def service_account(tmp_path: Path, token: str = "sa-token") -> Path:
    root = tmp_path / "sa"
    root.mkdir(exist_ok=True)
    (root / "token").write_text(token + "\n")
    (root / "ca.crt").write_text("CA")
    (root / "namespace").write_text("llmstage-system")
    return root


def test_in_cluster_reads_the_service_account_and_rereads_a_rotated_token(tmp_path: Path) -> None:
    root = service_account(tmp_path)
    found = credentials.in_cluster(
        {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, str(root)
    )
    assert found.server == "https://[fd00::1]:443" and found.namespace == "llmstage-system"
    assert found.ca_file == str(root / "ca.crt")
    now = [1000.0]
    auth = Auth(found, clock=lambda: now[0])
    assert auth.headers() == {"Authorization": "Bearer sa-token"}
    (root / "token").write_text("rotated")  # kubelet rotates the projected token
    now[0] += 30
    assert auth.headers() == {"Authorization": "Bearer sa-token"}
    now[0] += 31
    assert auth.headers() == {"Authorization": "Bearer rotated"}


def test_in_cluster_outside_a_pod_or_without_a_token_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not in a pod .* pass --kubeconfig FILE"):
        credentials.in_cluster({}, str(tmp_path))
    with pytest.raises(ConfigError, match="automountServiceAccountToken: true"):
        credentials.in_cluster(
            {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}, str(tmp_path)
        )


def test_load_prefers_a_named_kubeconfig_and_falls_back_to_the_pod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    path = kubeconfig(tmp_path / "config", user={"token": "t"})
    assert credentials.load(None, None, {"KUBECONFIG": str(path)}).token == "t"
    with pytest.raises(ConfigError, match="no such file"):
        credentials.load(str(tmp_path / "typo"), None, {})
    with pytest.raises(ConfigError, match="not in a pod"):
        credentials.load(None, None, {})


def test_an_unreadable_certificate_is_named(tmp_path: Path) -> None:
    found = Credentials("https://x", "kubeconfig k (context c)", ca_data="not a PEM")
    with pytest.raises(
        ConfigError, match=r"kubeconfig k \(context c\): the certificate authority cannot be loaded"
    ):
        Auth(found).ssl_context()


def test_plain_http_servers_get_no_tls_context() -> None:
    assert Auth(Credentials("http://127.0.0.1:8080", "t")).ssl_context() is None


def test_the_exec_info_is_valid_json_with_the_api_version(tmp_path: Path) -> None:
    script = plugin(tmp_path, "credential = {'status': {'token': os.environ['KUBERNETES_EXEC_INFO']}}")
    config = ExecConfig(command=str(script), api_version="client.authentication.k8s.io/v1")
    info = json.loads(Auth(Credentials("https://x", "t", exec=config)).token() or "")
    assert info == {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }
