#!/usr/bin/env python3
"""`make e2e-kind`: the e2e suite (e2e/) on a new kind cluster, llmstage installed with its chart.

    python3 hack/e2e_kind.py run      # up, images, install, e2e suite, down (whatever the outcome)
    python3 hack/e2e_kind.py tier     # run, or say why this machine cannot (`make test`'s last tier)
    python3 hack/e2e_kind.py up       # engine, node image, cluster, images, the chart (idempotent)
    python3 hack/e2e_kind.py test     # the e2e suite against the cluster `up` made
    python3 hack/e2e_kind.py down     # delete everything; fails if anything is left
    python3 hack/e2e_kind.py status   # what runs, and what this machine needs
    python3 hack/e2e_kind.py build    # only the images and the node image (cached per machine)

Where a Docker engine answers and Docker Hub is reachable (an ordinary CI runner) it is plain
kind: the machine's engine, kind's default node image (kindest/node, by digest), the operator,
stand-in and client images built with `docker build` and put on the node with `kind load
docker-image`; Ollama, nginx and the model come from their public registries.

Where neither is (this project's machines), everything is made here and nothing on the host
changes (hack/kindcluster/): Debian's docker.io as a private dockerd in its own network and
mount namespaces, a node image built from pinned sources and cached per machine, the images from
hack/images.py's cache streamed into the node's containerd, the model in a registry in the same
namespace. Machine-specific settings apply only where detected (hack/kindcluster/config.py):
a runc wrapper and restrict_oom_score_adj without CAP_SYS_RESOURCE, failCgroupV1: false on
cgroup v1.

The cluster (kind-llmstage-e2e, kubeconfig in .kind/kubeconfig) has a control plane and one
worker, where every workload runs. The worker carries the GPU labels GPU feature discovery would
set (H100) and 8 fake nvidia.com/gpu (a node status patch): production services schedule as on a
GPU node, and run e2e/fake-llm, the stand-in for vLLM's GPU image (there is no GPU here; why not
vLLM's CPU image instead: docs/e2e-kind.md). Dev and staging run the real Ollama with SmolLM2-135M.

`down` deletes the cluster, stops what `up` started, restores the host (sysctls, cgroups,
/lib/modules) and fails naming anything left (tests/kind/test_kind_teardown.py checks the same).
Standard library only: runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kindcluster import config, engine, host, procs, register_images
from kindcluster.config import CLUSTER, CONTEXT, KUBECONFIG, REPO, STATE

import images

register_images()

GPU_LABELS = {
    "nvidia.com/gpu.present": "true",
    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    "nvidia.com/gpu.memory": "81559",
    "nvidia.com/gpu.count": "8",
}
FAKE_GPUS = "8"
OLLAMA_MODEL = "smollm2:135m"
# Images the suite runs besides the operator (hack/images.py names): Ollama, the gateway of every
# serving pod, the vLLM stand-in and the client pods' image.
RUNTIME_IMAGES = ["ollama", "gateway", "fake-llm", "client"]
REGISTRY = "registry"
MACHINE_FILE = STATE / "machine.json"
TIMES: dict[str, float] = {}


def phase(name: str, t0: float) -> None:
    TIMES[name] = round(time.monotonic() - t0, 1)
    procs.log(f"{name}: {TIMES[name]:.0f} s")


def machine() -> config.Machine:
    """Detected once per `up` and kept, so `down` undoes what `up` did even if the machine's
    answers change in between."""
    if MACHINE_FILE.exists():
        d = json.loads(MACHINE_FILE.read_text())
        return config.Machine(
            missing_caps=tuple(d["missing_caps"]),
            cgroup_v1=bool(d["cgroup_v1"]),
            public_registry=bool(d["public_registry"]),
            host_docker=bool(d["host_docker"]),
            notes=tuple(d.get("notes") or ()),
        )
    m = config.detect()
    STATE.mkdir(parents=True, exist_ok=True)
    MACHINE_FILE.write_text(json.dumps(m.__dict__, indent=2) + "\n")
    return m


def current_engine(m: config.Machine) -> engine.Engine:
    return engine.Engine(private=not m.host_docker)


# The tool group of each binary the script runs (hack/tools/<group>).
TOOL_GROUPS = {"kind": "kind", "kubectl": "kubernetes", "helm": "helm", "registry": "registry"}


@functools.cache
def tool(name: str) -> str:
    """Built (or found in the tool cache) once per run: each look-up runs hack/tools/build.sh."""
    return str(images.tool(name, TOOL_GROUPS[name]))


def kubectl(eng: engine.Engine, *args: str, check: bool = True, stdin: str | None = None) -> str:
    return eng.run(tool("kubectl"), "--kubeconfig", KUBECONFIG, "--context", CONTEXT, *args, check=check,
                   stdin=stdin).stdout  # fmt: skip


def cluster_exists(eng: engine.Engine) -> bool:
    res = eng.run(tool("kind"), "get", "clusters", check=False)
    return CLUSTER in res.stdout.split()


# ---------------------------------------------------------------- up


def up() -> None:
    t_all = time.monotonic()
    m = machine()
    for line in m.describe():
        procs.log(f"this machine: {line}")
    host.record_baseline()
    t0 = time.monotonic()
    subprocess.run([str(REPO / "hack/tools/build.sh"), "kind", "helm", "kubernetes"], check=True)
    phase("tools", t0)
    t0 = time.monotonic()
    eng = engine.start(m)
    phase("engine", t0)
    node_image = None
    if m.builds_images:
        from kindcluster import node_image as node_image_mod

        t0 = time.monotonic()
        node_image = node_image_mod.ensure(eng)
        phase("node image", t0)
    if not cluster_exists(eng):
        create_cluster(eng, m, node_image)
    add_fake_gpus(eng)
    t0 = time.monotonic()
    refs = load_images(eng, m)
    phase("images", t0)
    registry = None
    if m.builds_images:
        t0 = time.monotonic()
        registry = start_model_registry(eng)
        phase("model", t0)
    t0 = time.monotonic()
    install_chart(eng, refs["llmstage"])
    phase("chart", t0)
    write_suite_env(refs, registry)
    procs.log(f"kind cluster {CONTEXT} ready in {time.monotonic() - t_all:.0f} s; kubeconfig {KUBECONFIG}")


def create_cluster(eng: engine.Engine, m: config.Machine, node_image: str | None) -> None:
    t0 = time.monotonic()
    cfg = STATE / "kind-config.yaml"
    cfg.write_text(config.kind_config(m, GPU_LABELS))
    argv = [tool("kind"), "create", "cluster", "--name", CLUSTER, "--config", str(cfg),
            "--kubeconfig", str(KUBECONFIG), "--wait", "180s"]  # fmt: skip
    if node_image:
        argv += ["--image", node_image]
    procs.log(f"kind create cluster {CLUSTER} ({node_image or 'kind v0.33.0 default node image'})")
    res = eng.run(*argv, check=False, timeout=900)
    (config.LOGS / "kind-create.log").write_text(res.stdout + res.stderr)
    if res.returncode != 0:
        raise procs.Fail(f"kind create cluster failed:\n{(res.stdout + res.stderr)[-3000:]}")
    phase("cluster", t0)
    procs.log(kubectl(eng, "get", "nodes", "-o", "wide").rstrip())


def add_fake_gpus(eng: engine.Engine) -> None:
    """Extended resources without a device plugin: advertised by a node status patch (the
    documented way, kubernetes.io/docs/tasks/administer-cluster/extended-resource-node/); the
    kubelet keeps them."""
    node = kubectl(
        eng, "get", "nodes", "-l", "nvidia.com/gpu.present=true", "-o", "jsonpath={.items[0].metadata.name}"
    )
    if not node:
        raise procs.Fail("no node with the GPU labels")
    patch = json.dumps([{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": FAKE_GPUS}])
    kubectl(eng, "patch", "node", node, "--subresource=status", "--type=json", "-p", patch)
    procs.wait_for(
        "the fake GPUs in the node's allocatable",
        lambda: (
            kubectl(eng, "get", "node", node, "-o", r"jsonpath={.status.allocatable.nvidia\.com/gpu}")
            == FAKE_GPUS
        ),
        60,
    )


def local_reference(name: str) -> str:
    img = images.IMAGES[name]
    return f"{img.repository}:{img.tag(images.key(name))}"


def worker_nodes(eng: engine.Engine) -> list[str]:
    """The nodes workloads run on (the control plane is tainted)."""
    names = eng.run(tool("kind"), "get", "nodes", "--name", CLUSTER).stdout.split()
    return [n for n in names if not n.endswith("-control-plane")]


def load_images(eng: engine.Engine, m: config.Machine) -> dict[str, str]:
    """The operator and runtime images on every node: name -> reference as pods name it."""
    names = ["llmstage", *RUNTIME_IMAGES]
    if not m.builds_images:
        return load_public(eng)
    refs = {n: local_reference(n) for n in names}
    for n in names:
        images.ensure_built(n)
    from kindcluster import archive

    for node in worker_nodes(eng):
        # What `kind load image-archive` does (pkg/cluster/nodeutils LoadImageArchive: containerd's
        # import into the k8s.io namespace), streamed from the cache instead of from a file.
        dump = eng.docker("exec", node, "containerd", "config", "dump").stdout
        snapshotter = next(
            (line.split("=", 1)[1].strip().strip("'\"") for line in dump.splitlines()
             if line.strip().startswith("snapshotter =")), "overlayfs",
        )  # fmt: skip
        argv = ["docker", "exec", "--interactive", node, "ctr", "--namespace=k8s.io", "images", "import",
                "--all-platforms", "--digests", f"--snapshotter={snapshotter}", "-"]  # fmt: skip
        proc = subprocess.Popen(
            eng.wrap(argv), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, **eng.env()},
        )  # fmt: skip
        assert proc.stdin
        archive.write(proc.stdin, [(images.entry(n) / "oci", [refs[n]]) for n in names])
        proc.stdin.close()
        proc.wait()
        assert proc.stderr
        err = proc.stderr.read()
        if proc.returncode != 0:
            raise procs.Fail(f"importing the images into {node} failed: {err.decode()[-2000:]}")
        listed = eng.docker("exec", node, "crictl", "images").stdout
        procs.log(f"images on {node}:\n{listed.rstrip()}")
    return refs


def load_public(eng: engine.Engine) -> dict[str, str]:
    """An ordinary runner: the repository's Dockerfiles with `docker build`, `kind load
    docker-image`; Ollama and nginx come from Docker Hub."""
    builds = {
        "llmstage": ("llmstage/llmstage:e2e", ["."]),
        "fake-llm": ("llmstage/fake-llm:e2e", ["e2e/fake-llm"]),
        "client": ("llmstage/client:e2e", ["-f", "tests/realnode/client/Dockerfile", "."]),
    }
    refs = {}
    for name, (ref, args) in builds.items():
        eng.run("docker", "build", "--quiet", "-t", ref, *args, cwd=REPO)
        eng.run(
            tool("kind"),
            "load",
            "docker-image",
            "--name",
            CLUSTER,
            "--nodes",
            ",".join(worker_nodes(eng)),
            ref,
        )
        refs[name] = ref
    return refs


def start_model_registry(eng: engine.Engine) -> str:
    """The registry in the private namespace, on the kind network's gateway, with the model."""
    gateway = config.gateway_of(eng.docker("network", "inspect", config.KIND_NETWORK).stdout)
    address = f"{gateway}:{config.REGISTRY_PORT}"
    holder = procs.pid_of(engine.HOLDER)
    procs.start(
        REGISTRY,
        [
            "nsenter",
            "-t",
            str(holder),
            "-n",
            "--",
            tool("registry"),
            "serve",
            str(REPO / "hack/cluster/registry.yml"),
        ],
        env={
            "REGISTRY_HTTP_ADDR": address,
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(STATE / "registry"),
            "OTEL_TRACES_EXPORTER": "none",
        },
    )
    procs.wait_for(
        "the model registry",
        lambda: (
            eng.run(
                "python3",
                "-c",
                f"import urllib.request; urllib.request.urlopen('http://{address}/v2/')",
                check=False,
            ).returncode
            == 0
        ),
        30,
    )
    res = eng.run(sys.executable, str(REPO / "hack/images.py"), "model", "--registry", address, check=False)
    if res.returncode != 0:
        raise procs.Fail(f"pushing the model failed:\n{res.stderr[-2000:]}")
    procs.log(f"model {res.stdout.strip()} in the registry at {address}")
    return address


def install_chart(eng: engine.Engine, operator_ref: str) -> None:
    repository, _, tag = operator_ref.rpartition(":")
    helm = [tool("helm"), "--kubeconfig", str(KUBECONFIG), "--kube-context", CONTEXT]
    if eng.run(*helm, "status", config.RELEASE, "-n", config.RELEASE_NAMESPACE, check=False).returncode == 0:
        return
    procs.log(f"helm install {config.RELEASE} charts/llmstage (operator image {operator_ref})")
    eng.run(*helm, "install", config.RELEASE, str(REPO / "charts/llmstage"), "--namespace",
            config.RELEASE_NAMESPACE, "--create-namespace", "--wait", "--timeout", "300s",
            "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
            "--set", "image.pullPolicy=Never", "--set", "operator.unschedulableGraceSeconds=8",
            timeout=400)  # fmt: skip
    kubectl(
        eng,
        "-n",
        config.RELEASE_NAMESPACE,
        "rollout",
        "status",
        f"deployment/{config.RELEASE}",
        "--timeout=300s",
    )
    procs.log(
        "the chart's operator pods:\n"
        + kubectl(eng, "-n", config.RELEASE_NAMESPACE, "get", "pods", "-o", "wide").rstrip()
    )
    procs.log("the CRD: " + kubectl(eng, "get", "crd", "llmservices.llmstage.io", "-o", "name").strip())


SUITE_ENV = STATE / "suite.env.json"


def write_suite_env(refs: dict[str, str], registry: str | None) -> None:
    env = {
        "LLMSTAGE_TEST_KUBECONFIG": str(KUBECONFIG),
        "LLMSTAGE_E2E_OPERATOR": "in-cluster",
        "LLMSTAGE_E2E_RELEASE": config.RELEASE,
        "LLMSTAGE_E2E_RELEASE_NAMESPACE": config.RELEASE_NAMESPACE,
        "LLMSTAGE_E2E_OLLAMA_MODEL": OLLAMA_MODEL,
        "LLMSTAGE_E2E_VLLM_IMAGE": refs["fake-llm"],
        "LLMSTAGE_E2E_CLIENT_IMAGE": refs["client"],
    }
    if registry:
        env["LLMSTAGE_E2E_OLLAMA_REGISTRY"] = registry
    SUITE_ENV.write_text(json.dumps(env, indent=2) + "\n")


# ---------------------------------------------------------------- the suite


def test(pytest_args: list[str]) -> int:
    m = machine()
    eng = current_engine(m)
    env = {**os.environ, **json.loads(SUITE_ENV.read_text()), **eng.env()}
    py = REPO / ".venv/bin/python"
    if not py.exists():
        raise procs.Fail("the venv is missing: make venv")
    t0 = time.monotonic()
    # tee-sys: what the scenarios print (the answers, the cutover's counts) is in the log too.
    res = subprocess.run(
        eng.wrap([py, "-m", "pytest", "e2e", "--capture=tee-sys", *pytest_args]), env=env, cwd=REPO
    )
    phase("e2e suite", t0)
    if res.returncode != 0:
        logs = kubectl(
            eng,
            "-n",
            config.RELEASE_NAMESPACE,
            "logs",
            f"deployment/{config.RELEASE}",
            "--tail=200",
            check=False,
        )
        print(logs, file=sys.stderr)
    return res.returncode


# ---------------------------------------------------------------- down


def down() -> None:
    t0 = time.monotonic()
    m = machine() if MACHINE_FILE.exists() else config.detect()
    eng = current_engine(m)
    baseline = json.loads(config.BASELINE.read_text()) if config.BASELINE.exists() else host.snapshot()
    netns = engine.netns_inode()
    engine_up = not eng.private or bool(procs.pid_of(engine.DOCKERD))
    if engine_up and KUBECONFIG.parent.exists():
        if cluster_exists(eng):
            eng.run(
                tool("kind"), "delete", "cluster", "--name", CLUSTER, "--kubeconfig", KUBECONFIG, timeout=300
            )
        procs.stop(REGISTRY)
        if eng.private:
            # Everything in the private engine goes; its data root is removed below anyway.
            eng.docker("system", "prune", "--all", "--force", "--volumes", check=False)
        else:
            for ref in ("llmstage/llmstage:e2e", "llmstage/fake-llm:e2e", "llmstage/client:e2e"):
                eng.docker("rmi", ref, check=False)
            # `kind delete cluster` keeps its network (and the host bridge); Docker refuses to
            # remove it while another kind cluster still uses it.
            eng.docker("network", "rm", config.KIND_NETWORK, check=False)
    procs.stop(REGISTRY)
    engine.stop(eng)
    host.restore(baseline)
    for p in (config.DOCKER_DATA, STATE / "registry", STATE / "tmp"):
        images.remove_tree(p)
    for p in (config.DOCKER_SOCK, KUBECONFIG, engine.DAEMON_JSON, SUITE_ENV):
        p.unlink(missing_ok=True)
    problems = host.leftovers(baseline, netns)
    if problems:
        raise procs.Fail("the kind cluster left things behind:\n  " + "\n  ".join(problems))
    config.BASELINE.unlink(missing_ok=True)
    MACHINE_FILE.unlink(missing_ok=True)
    procs.log(
        f"kind cluster down in {time.monotonic() - t0:.0f} s; no process, mount, link, rule, cgroup "
        "or changed sysctl left"
    )


def status() -> int:
    m = machine() if MACHINE_FILE.exists() else config.detect()
    for line in m.describe():
        print(f"machine: {line}")
    eng = current_engine(m)
    for name in (engine.HOLDER, engine.DOCKERD, REGISTRY):
        print(f"{name:10} {'running' if procs.pid_of(name) else 'stopped'}  pid={procs.pid_of(name) or '-'}")
    if not eng.private or procs.pid_of(engine.DOCKERD):
        print(f"cluster {CLUSTER}: {'exists' if cluster_exists(eng) else 'absent'}")
    return 0


# Free space the run needs where .kind/ lives: up to 3.7 GB of node state and the images imported
# into the nodes' containerd (docs/e2e-kind.md), with room to spare.
NEEDED_FREE_BYTES = 8 << 30


def run(pytest_args: list[str]) -> int:
    free = shutil.disk_usage(REPO).free
    if free < NEEDED_FREE_BYTES:
        procs.log(
            f"error: {free / 2**30:.1f} GiB free under {REPO}; e2e-kind needs {NEEDED_FREE_BYTES >> 30} GiB "
            "(the real node's image store and registry take about 20 GB: `python3 hack/cluster.py down` "
            "and `python3 hack/cluster.py free-disk` free them)"
        )
        return 1
    t0 = time.monotonic()
    rc = 1
    try:
        up()
        rc = test(pytest_args)
        # The teardown check runs down itself and checks the host independently of it.
        t1 = time.monotonic()
        py = REPO / ".venv/bin/python"
        res = subprocess.run(
            [py, "-m", "pytest", "tests/kind", "-m", "kind_teardown", "-p", "no:cacheprovider"], cwd=REPO
        )
        phase("down (teardown test)", t1)
        rc = rc or res.returncode
    finally:
        if procs.pid_of(engine.HOLDER) or procs.pid_of(engine.DOCKERD) or config.BASELINE.exists():
            down()
    total = time.monotonic() - t0
    summary = ", ".join(f"{k} {v:.0f} s" for k, v in TIMES.items())
    procs.log(f"e2e-kind {'passed' if rc == 0 else 'FAILED'} in {total:.0f} s ({summary})")
    return rc


def cannot_run() -> str | None:
    """Why this machine cannot run the kind cluster, or None. `make test` skips the tier then, as
    it leaves out the real node where containers cannot run."""
    if os.environ.get("LLMSTAGE_E2E_KIND", "1") == "0":
        return "LLMSTAGE_E2E_KIND=0"
    if sys.platform != "linux":
        return f"kind's nodes need Linux (this is {sys.platform})"
    if config.host_docker_answers():
        return None
    if os.geteuid() != 0:
        return "no Docker engine answers, and a private one needs root"
    missing = [b for b in ("unshare", "nsenter", "apt-get") if not shutil.which(b)]
    if missing:
        return f"no Docker engine answers, and a private one needs {', '.join(missing)}"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["run", "tier", "up", "test", "down", "status", "build"])
    ap.add_argument("pytest_args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    extra = a.pytest_args or os.environ.get("PYTEST_ARGS", "").split()
    if a.action == "tier":
        why = cannot_run()
        if why:
            procs.log(f"e2e-kind skipped: {why}")
            return 0
        a.action = "run"
    if os.geteuid() != 0 and not config.host_docker_answers():
        print("error: a private Docker engine needs root (or run where `docker info` works)", file=sys.stderr)
        return 1
    try:
        if a.action == "run":
            return run(extra)
        if a.action == "up":
            up()
        elif a.action == "test":
            return test(extra)
        elif a.action == "down":
            down()
        elif a.action == "build":
            m = machine()
            eng = engine.start(m)
            from kindcluster import node_image

            node_image.ensure(eng)
            for n in ["llmstage", *RUNTIME_IMAGES]:
                images.ensure_built(n)
        else:
            return status()
    except (procs.Fail, images.Fail) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
