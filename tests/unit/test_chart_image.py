"""The operator image the chart deploys: the Dockerfile's promises checked against the chart and
the pinned requirements (no image can be built on these machines; see docs/install.md)."""

from __future__ import annotations

import json
import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from testkit.chart import CHART, REPO
from testkit.locks import lock

DOCKERFILE = (REPO / "Dockerfile").read_text()
REQUIREMENTS = REPO / "requirements" / "runtime.txt"


def instructions(name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+?)$", DOCKERFILE, re.MULTILINE)]


def test_base_image_is_python_311_slim_pinned_to_a_patch_release_by_digest() -> None:
    (arg,) = [a for a in instructions("ARG") if a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}", arg), arg
    assert instructions("FROM") == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]


def test_runs_llmstage_run_as_the_numeric_non_root_user_the_chart_expects() -> None:
    (user,) = instructions("USER")
    uid, gid = (int(x) for x in user.split(":"))
    assert uid != 0 and gid != 0
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["llmstage", "run"]
    pod_context = yaml.safe_load((CHART / "values.yaml").read_text())["podSecurityContext"]
    assert (pod_context["runAsUser"], pod_context["runAsGroup"]) == (uid, gid)


def test_nothing_is_written_to_the_image_at_run_time() -> None:
    assert "PYTHONDONTWRITEBYTECODE=1" in DOCKERFILE
    assert "HOME=/tmp" in DOCKERFILE  # /tmp is the chart's only writable mount
    assert "compileall" in DOCKERFILE  # bytecode is compiled at build time instead
    chart_pod = (CHART / "templates" / "deployment.yaml").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["securityContext"]["readOnlyRootFilesystem"] is True and "mountPath: /tmp" in chart_pod


def test_no_installer_stays_in_the_runtime_image_and_the_build_checks_it() -> None:
    build, runtime = DOCKERFILE.split("\nFROM ${PYTHON_IMAGE}\n")
    assert "pip uninstall --quiet --yes pip setuptools" in build  # the venv's own
    assert "pip uninstall --quiet --yes pip setuptools wheel" in runtime  # the base's
    assert "! find / -xdev" in runtime  # the build fails if any is left


def test_the_oci_labels_say_what_source_revision_and_version_it_is() -> None:
    labels = dict(re.findall(r'(org\.opencontainers\.image\.\w+)="([^"]*)"', DOCKERFILE))
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.revision"] == "${REVISION}"
    assert labels["org.opencontainers.image.source"] == "${SOURCE}"
    assert {"VERSION=unknown", "REVISION=unknown", "SOURCE=unknown"} <= set(instructions("ARG"))


def test_exposed_ports_are_the_charts_health_and_metrics_ports() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    exposed = {int(p) for line in instructions("EXPOSE") for p in line.split()}
    assert exposed == {values["healthPort"], values["metrics"]["port"]}


def test_dependencies_are_installed_exactly_from_the_hashed_lock() -> None:
    assert (
        "pip install --require-hashes --no-deps --only-binary=:all: -r /src/requirements/runtime.txt"
        in DOCKERFILE
    )
    assert "pip install --no-deps /src" in DOCKERFILE and "pip check" in DOCKERFILE
    pins = lock.parse_lock(REQUIREMENTS.read_text())
    assert pins and all(p.hashes for versions in pins.values() for p in versions)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert {canonicalize_name(Requirement(d).name) for d in project} <= set(pins)
    assert not {"pytest", "ruff", "mypy", "hypothesis"} & set(pins)  # dev tools stay out of the image
    assert "kubernetes" not in pins  # llmstage.kubeapi does its part; the build checks it is absent


def test_google_auth_is_installed_from_its_lock_outside_site_packages_and_checked() -> None:
    """requirements/gcs.txt into /opt/llmstage/fetch-gcs, which only llmstage.fetch.gcs puts on
    sys.path (tests/unit/test_fetch_gcs_isolation.py); the build imports it there and checks that
    the operator's modules do not."""
    assert (
        "pip install --require-hashes --no-deps --only-binary=:all: --target /opt/llmstage/fetch-gcs "
        "-r /src/requirements/gcs.txt" in DOCKERFILE
    )
    assert "compileall -q /opt/llmstage/lib /opt/llmstage/fetch-gcs" in DOCKERFILE
    assert "python -c 'import llmstage.fetch.gcs'" in DOCKERFILE
    assert 'assert not {"google.auth", "cryptography", "kubernetes"} & set(sys.modules)' in DOCKERFILE
    assert "! /opt/llmstage/bin/python -c 'import kubernetes'" in DOCKERFILE
    build, runtime = DOCKERFILE.split("\nFROM ${PYTHON_IMAGE}\n")
    assert "fetch-gcs" in build and "COPY --from=build /opt/llmstage /opt/llmstage" in runtime


def test_dockerignore_lets_through_exactly_what_the_build_copies() -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = {
        src for line in instructions("COPY") if not line.startswith("--from") for src in line.split()[:-1]
    }
    # `!requirements/` only opens the directory for the two locks below it.
    assert copied == {a for a in allowed if not any(b.startswith(a + "/") for b in allowed)}
