"""The version is written once, in pyproject.toml: the package, the chart and the image say it."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import llmstage
import yaml

REPO = Path(__file__).resolve().parents[2]


def pyproject_version() -> str:
    version: str = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    return version


def test_the_package_reports_the_version_of_pyproject() -> None:
    assert llmstage.__version__ == pyproject_version()


def test_the_chart_is_the_same_release() -> None:
    chart = yaml.safe_load((REPO / "charts" / "llmstage" / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == (pyproject_version(), pyproject_version())


def test_the_image_label_is_the_version_of_pyproject() -> None:
    """make image passes hack/images.py's provenance() as build arguments; the Dockerfile puts
    VERSION into the org.opencontainers.image.version label."""
    spec = importlib.util.spec_from_file_location("images", REPO / "hack" / "images.py")
    assert spec and spec.loader
    images = importlib.util.module_from_spec(spec)
    sys.modules["images"] = images
    spec.loader.exec_module(images)
    assert images.provenance()["VERSION"] == pyproject_version()
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG VERSION=", dockerfile, re.M)
    assert 'org.opencontainers.image.version="${VERSION}"' in dockerfile
