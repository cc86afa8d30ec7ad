"""The Docker engine kind runs on: the machine's own where one answers (an ordinary CI runner), else
a private dockerd from Debian's docker.io in a network and mount namespace of its own.

The private engine: a holder process (`unshare --net --mount --propagation private`, then a
tmpfs on /run, loopback up, `sleep infinity`) keeps the namespaces; dockerd and the model
registry join them with nsenter, and so does every client (docker, kind, kubectl, helm, pytest).
dockerd gets --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false, its own
--data-root, --exec-root, socket, pidfile and config file, and --cgroup-parent llmstage-kind: it
adds no rule, link, route or mount to the host, and reads nothing of /etc/docker. On a machine
whose capability bounding set lacks some capabilities its default runtime is runc-wrapper (see
there). Standard library only."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kindcluster import procs
from kindcluster.config import (
    CGROUP_PARENT,
    DOCKER_DATA,
    DOCKER_EXEC_ROOT,
    DOCKER_SOCK,
    LOGS,
    REPO,
    STATE,
    Machine,
)

HERE = Path(__file__).resolve().parent
RUNC_WRAPPER = HERE / "runc-wrapper"
DAEMON_JSON = STATE / "daemon.json"
HOLDER, DOCKERD = "netns", "dockerd"
# The docker.io package's binaries first: its client matches its daemon (20.10, API 1.41).
PATH = f"/usr/sbin:/usr/bin:{os.environ.get('PATH', '/sbin:/bin')}"
DEBS = ["docker.io", "iproute2", "util-linux"]
HOLDER_SCRIPT = (
    "mount -t tmpfs -o mode=0755,size=256m llmstage-kind-run /run"
    " && mkdir -p /run/llmstage-kind && ip link set lo up && exec sleep infinity"
)


@dataclass(frozen=True)
class Engine:
    """How clients reach the engine: the environment and the namespace to run them in."""

    private: bool

    def env(self) -> dict[str, str]:
        if not self.private:
            return {}
        return {"DOCKER_HOST": f"unix://{DOCKER_SOCK}", "PATH": PATH}

    def wrap(self, argv: Sequence[str | Path]) -> list[str]:
        """argv as run inside the engine's network namespace (unchanged for the host's engine)."""
        args = [str(a) for a in argv]
        if not self.private:
            return args
        holder = procs.pid_of(HOLDER)
        if not holder:
            raise procs.Fail("the private engine's namespaces are gone (run `make e2e-kind-down`)")
        return ["nsenter", f"--net=/proc/{holder}/ns/net", "--", *args]

    def run(
        self,
        *argv: str | Path,
        check: bool = True,
        stdin: str | None = None,
        timeout: float | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env()}
        return procs.run(*self.wrap(argv), check=check, env=env, input=stdin, timeout=timeout, cwd=cwd)

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("docker", *args, check=check)


def netns_inode() -> int | None:
    holder = procs.pid_of(HOLDER)
    return os.stat(f"/proc/{holder}/ns/net").st_ino if holder else None


def daemon_argv(machine: Machine) -> list[str]:
    DAEMON_JSON.write_text("{}\n")  # read instead of /etc/docker/daemon.json
    argv = [
        "dockerd",
        f"--config-file={DAEMON_JSON}",
        f"--data-root={DOCKER_DATA}",
        f"--exec-root={DOCKER_EXEC_ROOT}",
        f"--pidfile={DOCKER_EXEC_ROOT}/dockerd.pid",
        f"--host=unix://{DOCKER_SOCK}",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        "--bridge=none",
        f"--cgroup-parent=/{CGROUP_PARENT}",
        "--storage-driver=overlay2",
        "--log-level=warn",
    ]
    if machine.missing_caps:
        argv += [f"--add-runtime=llmstage-runc={RUNC_WRAPPER}", "--default-runtime=llmstage-runc"]
    if "SYS_RESOURCE" in machine.missing_caps:
        # dockerd would lower its own oom_score_adj to -500 (its default), which needs it.
        argv.append("--oom-score-adjust=0")
    return argv


def ensure_debs() -> None:
    res = subprocess.run(["bash", "-c", f"source {REPO}/hack/lib/debs.sh && ensure_debs {' '.join(DEBS)}"])
    if res.returncode != 0:
        raise procs.Fail("installing Docker (Debian's docker.io) failed")


def start(machine: Machine) -> Engine:
    if machine.host_docker:
        return Engine(private=False)
    ensure_debs()
    STATE.mkdir(parents=True, exist_ok=True)
    holder = procs.start(
        HOLDER, ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c", HOLDER_SCRIPT]
    )

    def holding() -> bool:
        if not procs.pid_of(HOLDER):
            raise procs.Fail(f"the namespace holder exited: {(LOGS / 'netns.log').read_text()[-500:]}")
        return Path(f"/proc/{holder}/cmdline").read_bytes().startswith(b"sleep")

    procs.wait_for("the private network and mount namespaces", holding, 30, 0.1)
    if os.stat(f"/proc/{holder}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
        raise procs.Fail("the namespace holder is in the host's network namespace")
    engine = Engine(private=True)
    procs.start(
        DOCKERD,
        ["nsenter", "-t", str(holder), "-n", "-m", "--", *daemon_argv(machine)],
        env={"PATH": PATH, "LLMSTAGE_REAL_RUNC": shutil.which("runc", path=PATH) or "/usr/sbin/runc"},
    )

    def answers() -> bool:
        if not procs.pid_of(DOCKERD):
            raise procs.Fail(f"dockerd exited: {(LOGS / 'dockerd.log').read_text()[-1500:]}")
        return DOCKER_SOCK.exists() and engine.docker("info", check=False).returncode == 0

    procs.wait_for("dockerd", answers, 60)
    info = json.loads(engine.docker("info", "--format", "{{json .}}").stdout)
    procs.log(
        f"private dockerd {info.get('ServerVersion')} up (storage {info.get('Driver')}, cgroup "
        f"{info.get('CgroupVersion')}, runtime {info.get('DefaultRuntime')}) in its own network "
        "and mount namespaces"
    )
    return engine


def processes_in_namespace(inode: int) -> list[tuple[int, str]]:
    """Every process whose network namespace is the private engine's."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if os.stat(d / "ns" / "net").st_ino == inode:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                found.append((int(d.name), cmd))
        except OSError:
            continue
    return found


def stop(engine: Engine) -> None:
    """dockerd and the holder; whatever still runs in the namespace goes with SIGKILL. The
    namespaces, and every mount and link in them, end with their last process."""
    if not engine.private:
        return
    inode = netns_inode()
    procs.stop(DOCKERD, grace=30)
    if inode:
        for pid, _ in processes_in_namespace(inode):
            if pid != procs.pid_of(HOLDER):
                procs.with_group(pid, 9)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
    procs.stop(HOLDER, grace=5)
