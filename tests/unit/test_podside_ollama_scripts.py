"""llmstage.podside's Ollama scripts, ollama_pull.sh (the pull-model init container) and
ollama_load.sh (the server container's command), run as the pods run them, `sh -c TEXT` (dash when
the machine has it: the POSIX sh the scripts are written for), with a stand-in `ollama` and only
the tools the scripts use on PATH, and tmp dirs for the cache, HOME and the marker.

The stand-in records every call and acts as Ollama 0.17.4 does where the scripts depend on it: a
server that `list` can reach once it is up, `pull` writing the manifest last and the blob it
names, `cp` writing one more manifest, `show` of a model's capabilities; SIGHUP ends the server
with it (Go's default for a signal it does not handle), SIGTERM cleanly. Against the real Ollama:
the real-node tests (tests/realnode/test_serving.py).
"""

from __future__ import annotations

import fcntl
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from llmstage.podside import source

from testkit import wait_until

SH = shutil.which("dash") or "/bin/sh"
# What the scripts and the stand-in call besides `ollama` and the shell's builtins.
TOOLS = ("grep", "cmp", "cat", "sleep", "awk", "mkdir", "dirname", "cp", "rm")
BLOB = "b" * 64
PULL = "llama3.1:8b"
PULL_MANIFEST = "registry.ollama.ai/library/llama3.1/8b"
SERVED = "chat"
SERVED_MANIFEST = "registry.ollama.ai/library/chat/latest"

FAKE_OLLAMA = f"""#!/bin/sh
# Each call, one line written at once: its arguments in brackets ("[run][chat][]": an empty
# prompt too).
line=""
for arg in "$@"; do line="$line[$arg]"; done
echo "$line" >>"$FAKE_DIR/calls"
case "$1" in
  serve)
    if [ -n "${{FAKE_SERVE_FAILS:-}}" ]; then
      echo "Error: listen tcp $OLLAMA_HOST: bind: address already in use"; exit 1
    fi
    echo $$ >"$FAKE_DIR/serve.pid"
    trap 'echo TERM >>"$FAKE_DIR/signals"; exit 0' TERM
    : >"$FAKE_DIR/up"
    # The server container's: done once the loader's marker is there (the test's end).
    until [ -n "${{LLMSTAGE_LOADED:-}}" ] && [ -e "$LLMSTAGE_LOADED" ]; do sleep 0.05; done ;;
  list) [ -e "$FAKE_DIR/up" ] ;;
  show) printf '%s' "${{FAKE_SHOW:-}}"; exit "${{FAKE_SHOW_RC:-1}}" ;;
  pull)
    if [ -n "${{FAKE_PULL_FAILS:-}}" ]; then
      echo "Error: pull model manifest: file does not exist" >&2; exit 1
    fi
    manifest="$OLLAMA_MODELS/manifests/$LLMSTAGE_PULL_MANIFEST"
    mkdir -p "$(dirname "$manifest")" "$OLLAMA_MODELS/blobs"
    : >"$OLLAMA_MODELS/blobs/sha256-{BLOB}"
    echo '{{"layers":[{{"digest":"sha256:{BLOB}"}}]}}' >"$manifest" ;;
  cp)
    if [ -n "${{FAKE_CP_FAILS:-}}" ]; then echo "Error: destination model name is invalid" >&2; exit 1; fi
    manifests="$OLLAMA_MODELS/manifests"
    mkdir -p "$(dirname "$manifests/$LLMSTAGE_MODEL_MANIFEST")"
    cp "$manifests/$LLMSTAGE_PULL_MANIFEST" "$manifests/$LLMSTAGE_MODEL_MANIFEST" ;;
  run)
    if [ -n "${{FAKE_RUN_FAILS:-}}" ]; then echo "Error: model requires more system memory" >&2; exit 1; fi ;;
esac
"""

GENERATIVE = (
    "  Model\n    architecture        llama      \n    parameters          8.0B       \n\n"
    '  Capabilities\n    completion    \n    tools    \n\n  Parameters\n    stop    "<|eot_id|>"    \n\n'
)
EMBEDDING = (
    "  Model\n    architecture    bert    \n    embedding length    768    \n\n"
    "  Capabilities\n    embedding    \n\n"
)


@dataclass
class Pod:
    """The dirs and environment of one container, and what the stand-in saw."""

    root: Path
    env: dict[str, str]

    @property
    def models(self) -> Path:
        return self.root / "models"

    def calls(self) -> list[str]:
        path = self.root / "fake" / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def asked(self) -> list[str]:
        """The calls besides the server's start and the waits for it (`list`, as often as it took)."""
        return [call for call in self.calls() if call not in ("[serve]", "[list]")]

    def signals(self) -> list[str]:
        path = self.root / "fake" / "signals"
        return path.read_text().splitlines() if path.exists() else []

    def run(self, script: str, **fake: str) -> subprocess.CompletedProcess[str]:
        (self.root / "fake" / "calls").unlink(missing_ok=True)
        (self.root / "fake" / "up").unlink(missing_ok=True)
        return subprocess.run(
            [SH, "-c", source(script)],
            env=self.env | fake,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def cache(self, name: str, manifest_text: str | None = None) -> None:
        """A manifest in the cache naming BLOB, and the blob."""
        manifest = self.models / "manifests" / name
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(manifest_text or f'{{"layers":[{{"digest":"sha256:{BLOB}"}}]}}\n')
        (self.models / "blobs").mkdir(exist_ok=True)
        (self.models / "blobs" / f"sha256-{BLOB}").touch()


def make_pod(root: Path, with_flock: bool = True) -> Pod:
    fake, tools, home = root / "fake", root / "tools", root / "home"
    for folder in (fake, tools, home, root / "models"):
        folder.mkdir(parents=True)
    (fake / "ollama").write_text(FAKE_OLLAMA)
    (fake / "ollama").chmod(0o755)
    for tool in (*TOOLS, *(("flock",) if with_flock else ())):
        found = shutil.which(tool)
        assert found, f"{tool} is needed on this machine"
        (tools / tool).symlink_to(found)
    env = {
        "PATH": f"{fake}:{tools}",
        "FAKE_DIR": str(fake),
        "HOME": str(home),
        "OLLAMA_MODELS": str(root / "models"),
        "OLLAMA_HOST": "127.0.0.1:11434",
    }
    return Pod(root, env)


@pytest.fixture
def pull_pod(tmp_path: Path) -> Pod:
    """The pull-model container of a service whose clients send the pulled name."""
    pod = make_pod(tmp_path)
    pod.env |= {"LLMSTAGE_PULL": PULL, "LLMSTAGE_PULL_MANIFEST": PULL_MANIFEST}
    return pod


@pytest.fixture
def alias_pod(pull_pod: Pod) -> Pod:
    """The pull-model container of a service served under another name (spec servedModelName)."""
    pull_pod.env |= {"LLMSTAGE_MODEL": SERVED, "LLMSTAGE_MODEL_MANIFEST": SERVED_MANIFEST}
    return pull_pod


# ollama_pull.sh


def test_a_model_not_in_the_cache_is_pulled_through_a_private_server_then_stopped(pull_pod: Pod) -> None:
    done = pull_pod.run("ollama_pull.sh")
    assert done.returncode == 0, done.stderr
    assert "[serve]" in pull_pod.calls()
    assert pull_pod.asked() == [f"[show][{PULL}]", f"[pull][{PULL}]"]
    assert done.stdout.splitlines() == [
        "llmstage: waiting for the pull lock of the model cache",
        f"llmstage: pulling {PULL} into {pull_pod.models}",
    ]
    assert (pull_pod.models / ".llmstage-pull.lock").exists()
    wait_until(
        lambda: pull_pod.signals() == ["TERM"], 60, 0.02, "the private server's SIGTERM at the step's exit"
    )


def test_a_model_in_the_cache_starts_no_server(pull_pod: Pod) -> None:
    """A restart, or a new pod on a filled cache: the manifest and every blob it names are there."""
    pull_pod.cache(PULL_MANIFEST)
    done = pull_pod.run("ollama_pull.sh")
    assert done.returncode == 0, done.stderr
    assert pull_pod.calls() == []
    assert done.stdout == f"llmstage: {PULL} is already in the model cache {pull_pod.models}\n"


def test_a_manifest_whose_blob_is_missing_is_pulled_again(pull_pod: Pod) -> None:
    pull_pod.cache(PULL_MANIFEST)
    (pull_pod.models / "blobs" / f"sha256-{BLOB}").unlink()
    done = pull_pod.run("ollama_pull.sh")
    assert done.returncode == 0, done.stderr
    assert pull_pod.calls()[-1] == f"[pull][{PULL}]"


def test_a_model_the_server_already_has_is_not_pulled(pull_pod: Pod) -> None:
    """Another pod pulled it while this one waited for the lock: the server's `show` finds it."""
    done = pull_pod.run("ollama_pull.sh", FAKE_SHOW_RC="0")
    assert done.returncode == 0, done.stderr
    assert "[serve]" in pull_pod.calls() and pull_pod.asked() == [f"[show][{PULL}]"]
    assert done.stdout.splitlines()[-1] == f"llmstage: {PULL} is already in the model cache {pull_pod.models}"


@pytest.mark.parametrize(("insecure", "pull"), [("1", ["--insecure", PULL]), ("", [PULL]), (None, [PULL])])
def test_the_pull_is_insecure_only_when_the_variable_is_set(
    pull_pod: Pod, insecure: str | None, pull: list[str]
) -> None:
    if insecure is not None:
        pull_pod.env["LLMSTAGE_PULL_INSECURE"] = insecure
    done = pull_pod.run("ollama_pull.sh")
    assert done.returncode == 0, done.stderr
    assert pull_pod.calls()[-1] == "[pull]" + "".join(f"[{a}]" for a in pull)


def test_a_served_name_is_copied_after_the_pull(alias_pod: Pod) -> None:
    done = alias_pod.run("ollama_pull.sh")
    assert done.returncode == 0, done.stderr
    assert alias_pod.calls()[-2:] == [f"[pull][{PULL}]", f"[cp][{PULL}][{SERVED}]"]
    assert done.stdout.splitlines()[-1] == f"llmstage: ollama cp {PULL} {SERVED} (the name clients send)"


def test_a_cached_model_with_an_identical_copy_starts_no_server(alias_pod: Pod) -> None:
    alias_pod.cache(PULL_MANIFEST)
    alias_pod.cache(SERVED_MANIFEST)
    done = alias_pod.run("ollama_pull.sh")
    assert done.returncode == 0, done.stderr
    assert alias_pod.calls() == []
    assert done.stdout == f"llmstage: {PULL} is already in the model cache {alias_pod.models} as {SERVED}\n"


@pytest.mark.parametrize("copy", [None, '{"layers":[]}\n'], ids=["no copy", "another model's"])
def test_a_cached_model_without_its_copy_is_copied_without_a_pull(alias_pod: Pod, copy: str | None) -> None:
    alias_pod.cache(PULL_MANIFEST)
    if copy is not None:
        alias_pod.cache(SERVED_MANIFEST, copy)
    done = alias_pod.run("ollama_pull.sh", FAKE_SHOW_RC="0")
    assert done.returncode == 0, done.stderr
    assert "[serve]" in alias_pod.calls()
    assert alias_pod.asked() == [f"[show][{PULL}]", f"[cp][{PULL}][{SERVED}]"]
    manifests = alias_pod.models / "manifests"
    assert (manifests / SERVED_MANIFEST).read_bytes() == (manifests / PULL_MANIFEST).read_bytes()


def test_an_identical_copy_is_left_alone(alias_pod: Pod) -> None:
    """The copy is right but a blob went missing: pulled again, and the copy not rewritten (a
    serving pod may be reading it)."""
    alias_pod.cache(PULL_MANIFEST)
    alias_pod.cache(SERVED_MANIFEST)
    (alias_pod.models / "blobs" / f"sha256-{BLOB}").unlink()
    done = alias_pod.run("ollama_pull.sh")
    assert done.returncode == 0, done.stderr
    assert alias_pod.calls()[-1] == f"[pull][{PULL}]"
    assert done.stdout.splitlines()[-1] == f"llmstage: {SERVED} already names {PULL}"


def test_pulls_of_pods_sharing_the_cache_take_turns(pull_pod: Pod) -> None:
    """Another pod holds the cache's pull lock: this one waits for it before it asks the server
    for the model (`show`) and pulls."""
    pull_pod.models.mkdir(exist_ok=True)
    out = pull_pod.root / "out"
    with (pull_pod.models / ".llmstage-pull.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # flock(2), as flock(1) takes it
        with out.open("w") as stdout:
            step = subprocess.Popen(
                [SH, "-c", source("ollama_pull.sh")], env=pull_pod.env, stdout=stdout, stderr=subprocess.PIPE
            )
        try:
            wait_until(
                lambda: "waiting for the pull lock" in out.read_text(), 60, 0.02, "the step to reach the lock"
            )
            time.sleep(0.5)
            assert step.poll() is None and pull_pod.asked() == []
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        assert step.wait(timeout=30) == 0
    assert pull_pod.calls()[-2:] == [f"[show][{PULL}]", f"[pull][{PULL}]"]


def test_an_image_without_flock_pulls_and_says_so(tmp_path: Path) -> None:
    pod = make_pod(tmp_path, with_flock=False)
    pod.env |= {"LLMSTAGE_PULL": PULL, "LLMSTAGE_PULL_MANIFEST": PULL_MANIFEST}
    done = pod.run("ollama_pull.sh")
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "llmstage: no flock in this image; pulls of pods sharing this cache are not serialised\n"
    )
    assert pod.calls()[-1] == f"[pull][{PULL}]"


def test_a_server_that_does_not_start_fails_the_step_with_its_log(pull_pod: Pod) -> None:
    done = pull_pod.run("ollama_pull.sh", FAKE_SERVE_FAILS="1")
    assert done.returncode == 1
    assert done.stdout == "Error: listen tcp 127.0.0.1:11434: bind: address already in use\n"
    assert f"[pull][{PULL}]" not in pull_pod.calls()


def test_a_failed_pull_fails_the_step_and_stops_the_server(alias_pod: Pod) -> None:
    done = alias_pod.run("ollama_pull.sh", FAKE_PULL_FAILS="1")
    assert done.returncode != 0
    assert "Error: pull model manifest: file does not exist" in done.stderr
    assert not any(call.startswith("[cp]") for call in alias_pod.calls())
    wait_until(lambda: alias_pod.signals() == ["TERM"], 60, 0.02, "the private server's SIGTERM")


def test_a_failed_copy_fails_the_step(alias_pod: Pod) -> None:
    done = alias_pod.run("ollama_pull.sh", FAKE_CP_FAILS="1")
    assert done.returncode != 0
    assert "Error: destination model name is invalid" in done.stderr


def test_a_missing_setting_fails_the_step_before_anything_runs(pull_pod: Pod) -> None:
    del pull_pod.env["LLMSTAGE_PULL_MANIFEST"]
    done = pull_pod.run("ollama_pull.sh")
    assert done.returncode != 0 and "LLMSTAGE_PULL_MANIFEST" in done.stderr
    assert pull_pod.calls() == []


# ollama_load.sh


@pytest.fixture
def server_pod(tmp_path: Path) -> Pod:
    """The server container: the name it loads, and the marker the startup probe tests."""
    pod = make_pod(tmp_path)
    pod.env |= {"LLMSTAGE_MODEL": SERVED, "LLMSTAGE_LOADED": str(tmp_path / "loaded")}
    return pod


@pytest.mark.parametrize(("show", "prompt"), [(GENERATIVE, ""), (EMBEDDING, "llmstage load check")])
def test_the_loader_loads_the_model_then_writes_the_marker(server_pod: Pod, show: str, prompt: str) -> None:
    """A generative model loads on an empty prompt; an embedding model needs input text."""
    done = server_pod.run("ollama_load.sh", FAKE_SHOW=show, FAKE_SHOW_RC="0")
    assert done.returncode == 0, done.stderr
    calls = server_pod.calls()
    # The loader's first `ollama list` may come before the server's start is recorded (they run
    # side by side); the model is asked about only once the server answers.
    assert calls.index("[serve]") < calls.index(f"[show][{SERVED}]")
    assert calls[-2:] == [f"[show][{SERVED}]", f"[run][{SERVED}][{prompt}]"]
    assert done.stdout.splitlines() == [f"llmstage: loading {SERVED}", f"llmstage: {SERVED} is loaded"]
    assert Path(server_pod.env["LLMSTAGE_LOADED"]).exists()


def test_the_server_is_the_containers_main_process(server_pod: Pod) -> None:
    """`exec`: the kubelet's SIGTERM reaches the server itself, and `$$` is its PID."""
    step = subprocess.Popen(
        [SH, "-c", source("ollama_load.sh")],
        env=server_pod.env | {"FAKE_SHOW": GENERATIVE, "FAKE_SHOW_RC": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert step.wait(timeout=30) == 0
    assert int((server_pod.root / "fake" / "serve.pid").read_text()) == step.pid


def test_a_model_not_in_the_cache_stops_the_server_with_sighup(server_pod: Pod) -> None:
    marker = Path(server_pod.env["LLMSTAGE_LOADED"])
    marker.touch()  # an earlier start's: removed before the server starts
    done = server_pod.run("ollama_load.sh", FAKE_SHOW_RC="1")
    assert done.returncode == -signal.SIGHUP  # Ollama does not handle SIGHUP: a failed container
    assert done.stderr == f"llmstage: {SERVED} is not in the model cache; stopping\n"
    assert not any(call.startswith("[run]") for call in server_pod.calls())
    assert not marker.exists()


def test_a_failed_load_stops_the_server_with_its_error(server_pod: Pod) -> None:
    marker = Path(server_pod.env["LLMSTAGE_LOADED"])
    marker.touch()
    done = server_pod.run("ollama_load.sh", FAKE_SHOW=GENERATIVE, FAKE_SHOW_RC="0", FAKE_RUN_FAILS="1")
    assert done.returncode == -signal.SIGHUP
    assert done.stderr == (
        f"Error: model requires more system memory\nllmstage: loading {SERVED} failed; stopping\n"
    )
    assert not marker.exists()


def test_the_loader_waits_for_the_server(server_pod: Pod) -> None:
    """`ollama list` fails until the server is up; the loader asks nothing else before."""
    done = server_pod.run("ollama_load.sh", FAKE_SHOW=GENERATIVE, FAKE_SHOW_RC="0")
    assert done.returncode == 0, done.stderr
    calls = server_pod.calls()
    first_show = calls.index(f"[show][{SERVED}]")
    assert calls.index("[serve]") < first_show and calls[first_show - 1] == "[list]"


def test_the_scripts_parse_as_posix_sh() -> None:
    """dash (when installed), a POSIX sh without bash's extensions, parses both."""
    for name in ("ollama_pull.sh", "ollama_load.sh"):
        checked = subprocess.run([SH, "-n", "-c", source(name)], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, (name, checked.stderr)
