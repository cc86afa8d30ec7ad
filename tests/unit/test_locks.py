"""The Python locks (requirements/*.txt, made by `make lock` from pyproject.toml's ranges): exact,
hashed, consistent with pyproject.toml, and what `make venv` installs, whatever the index serves.

These checks never resolve anything against today's index: a lock stays valid until pyproject.toml
changes, not until a dependency publishes a release."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from testkit.chart import REPO
from testkit.locks import lock

LOCKS = {p.name: p for p in lock.ALL_LOCKS}
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def pins(path: Path) -> dict[str, list[Any]]:
    """name -> the lock.Pin entries of that name."""
    return lock.parse_lock(path.read_text())


def environment(extra: str = "") -> dict[str, str]:
    """Marker variables of this interpreter and platform."""
    return {**{k: str(v) for k, v in default_environment().items()}, "extra": extra}


def applicable(entries: list[Any]) -> list[Any]:
    """The pins of one name that apply to this interpreter and platform."""
    return [
        p for p in entries if p.marker is None or Requirement(f"x; {p.marker}").marker.evaluate(environment())
    ]


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_every_line_is_an_exact_pin_with_hashes(name: str) -> None:
    text = LOCKS[name].read_text()
    locked = lock.parse_lock(text)
    assert locked, f"{name} pins nothing"
    unhashed = [p.name for entries in locked.values() for p in entries if not p.hashes]
    assert unhashed == [], f"{name}: pins without hashes: {unhashed}"
    assert "-e " not in text and "git+" not in text and "file:" not in text


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_each_lock_was_made_from_the_pyproject_of_this_commit(name: str) -> None:
    assert lock.recorded_digest(LOCKS[name]) == lock.inputs_digest(LOCKS[name], PYPROJECT), (
        f"the inputs of requirements/{name} (pyproject.toml's dependencies, an .in file, the uv pin) changed "
        "since it was made: run make lock"
    )


def _assert_within_ranges(requirements: list[str], locked: dict[str, list[Any]], extra: str = "") -> None:
    for text in requirements:
        req = Requirement(text)
        if req.marker and not req.marker.evaluate(environment(extra)):
            continue
        entries = applicable(locked.get(canonicalize_name(req.name), []))
        assert len(entries) == 1, f"{req.name} ({text}) is not locked for this platform"
        assert req.specifier.contains(entries[0].version, prereleases=True), (
            f"{req.name} is locked at {entries[0].version}, outside pyproject.toml's {text!r}: run make lock"
        )


def test_runtime_dependencies_are_locked_within_pyproject_ranges() -> None:
    _assert_within_ranges(PYPROJECT["project"]["dependencies"], pins(lock.RUNTIME_LOCK))


def test_dev_lock_covers_runtime_dev_extra_and_build_backend_within_ranges() -> None:
    project = PYPROJECT["project"]
    dev = pins(lock.DEV_LOCK)
    _assert_within_ranges(project["dependencies"], dev)
    _assert_within_ranges(project["optional-dependencies"]["dev"], dev, extra="dev")
    _assert_within_ranges(PYPROJECT["build-system"]["requires"], dev)


def test_the_tests_run_with_exactly_the_versions_the_image_installs() -> None:
    runtime, dev = pins(lock.RUNTIME_LOCK), pins(lock.DEV_LOCK)
    differ = {name: (entries, dev.get(name)) for name, entries in runtime.items() if dev.get(name) != entries}
    assert differ == {}, (
        "requirements/dev.txt must hold requirements/runtime.txt's pins unchanged: run make lock"
    )


def test_the_venv_holds_exactly_the_dev_lock() -> None:
    """What `make venv` installed (this interpreter's environment) is the lock: same versions, and
    nothing that the lock does not list (pip comes with the venv; llmstage is the editable package)."""
    locked = {name: applicable(e)[0].version for name, e in pins(lock.DEV_LOCK).items() if applicable(e)}
    installed: dict[str, str] = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    assert sys.prefix != sys.base_prefix, "run the tests in the project's venv (make venv)"
    extra = set(installed) - set(locked) - {"llmstage", "pip"}
    wrong = {n: (installed.get(n), v) for n, v in locked.items() if installed.get(n) != v}
    assert (wrong, extra) == ({}, set()), "the venv differs from requirements/dev.txt: run make venv"


def _wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal wheel: enough for pip to see a release of `name` at `version`."""
    path = directory / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(f"{name}/__init__.py", "# a stand-in release that pip must never install\n")
        whl.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        whl.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        whl.writestr(f"{info}/RECORD", "")
    return path


def test_newer_releases_on_the_index_do_not_change_what_make_venv_installs(tmp_path: Path) -> None:
    """A local index (pip's find-links) offers a newer release of a transitive dependency (idna),
    a newer release of a direct one that its range allows (kopf), and a same-version idna with
    other contents. hack/venv.sh, the script `make venv` runs, still resolves to the lock's files."""
    dev = pins(lock.DEV_LOCK)
    idna, kopf = applicable(dev["idna"])[0], applicable(dev["kopf"])[0]
    index = tmp_path / "index"
    index.mkdir()
    _wheel(index, "idna", "99.0")
    _wheel(index, "idna", idna.version)
    newer_kopf = kopf.version.rsplit(".", 1)[0] + ".999"
    _wheel(index, "kopf", newer_kopf)
    env = {**os.environ, "PIP_FIND_LINKS": str(index), "PYTHON": sys.executable}

    # The control: an unlocked install from the same index takes the new releases, so the index
    # is really in pip's view.
    control = tmp_path / "control.json"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed", "--no-deps",
         "--report", str(control), "idna", f"kopf{Requirement('kopf' + '>=' + kopf.version).specifier}"],
        check=True, env=env,
    )  # fmt: skip
    seen = {
        i["metadata"]["name"]: i["metadata"]["version"] for i in json.loads(control.read_text())["install"]
    }
    assert seen == {"idna": "99.0", "kopf": newer_kopf}

    report = tmp_path / "report.json"
    subprocess.run([REPO / "hack" / "venv.sh", "--dry-run", report, tmp_path / "venv"], check=True, env=env)
    would = {
        canonicalize_name(i["metadata"]["name"]): (
            i["metadata"]["version"],
            i["download_info"]["archive_info"],
        )
        for i in json.loads(report.read_text())["install"]
    }
    expected = {name: applicable(entries)[0] for name, entries in dev.items() if applicable(entries)}
    assert set(would) == set(expected)
    for name, (version, archive) in would.items():
        assert version == expected[name].version, name
        digest = archive.get("hashes", {}).get("sha256") or archive["hash"].split("=", 1)[1]
        assert f"sha256:{digest}" in expected[name].hashes, name
