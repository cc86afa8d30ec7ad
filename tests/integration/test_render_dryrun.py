"""The API server accepts every rendered object as is (server-side dry-run), admits the pods under
the `restricted` Pod Security Standard, and GPU pods land on the matching fake GPU node.

Dry-run runs the real admission chain and validation of the local kube-apiserver: defaulting,
field validation (strict: unknown or duplicate fields fail the request), and server-side apply's
list-map key checks, which offline schemas do not cover.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from kubernetes import client
from llmstage.render import render, selector_string
from llmstage.resolve.resolved import ModelCache, Resolved, Scheduling

from testkit import wait_until
from testkit.dryrun import Kubectl, contained, server_side_dry_run
from testkit.render_fixtures import CASES, PRODUCTION_VLLM, PRODUCTION_VLLM_70B_TP, WITH_POD_MONITOR


@pytest.mark.parametrize("case", sorted(CASES))
def test_server_accepts_every_rendered_object(case: str, namespace: str, kubectl: Kubectl) -> None:
    resolved, facts = CASES[case]
    objects = render(replace(resolved, namespace=namespace), facts)
    # The test bed has no Prometheus Operator: PodMonitors are checked offline (test_render_schema).
    # ScaledObjects are dry-run against KEDA's own CRD in test_keda.py, which installs it, and
    # InferencePools and HTTPRoutes against the pinned CRDs in test_routing.py. LeaderWorkerSets
    # are dry-run here: the test bed runs LWS (hack/lws.py), its CRD and its webhooks.
    applicable = [
        o for o in objects if o["kind"] not in ("PodMonitor", "ScaledObject", "InferencePool", "HTTPRoute")
    ]
    skipped = [o for o in objects if o["kind"] == "PodMonitor"]
    assert len(skipped) == (1 if facts.pod_monitor_crd and resolved.runtime.value == "vllm" else 0)

    returned = server_side_dry_run(kubectl, applicable)

    assert [(o["kind"], o["metadata"]["name"]) for o in returned] == [
        (o["kind"], o["metadata"]["name"]) for o in applicable
    ]
    for sent, back in zip(applicable, returned, strict=True):
        assert contained(sent, back) == [], f"{sent['kind']} {sent['metadata']['name']}"
    # Dry run: nothing was created.
    assert kubectl("get", "deployments,services,pvc", "-n", namespace, "-o", "name").stdout.strip() == ""


def test_pod_monitor_crd_is_absent_from_the_test_bed(namespace: str, kubectl: Kubectl) -> None:
    """Why the dry-run skips PodMonitors: the API server does not know the kind."""
    groups = kubectl("api-resources", "--api-group=monitoring.coreos.com", "-o", "name").stdout
    assert groups.strip() == ""
    pod_monitor = render(replace(PRODUCTION_VLLM, namespace=namespace), WITH_POD_MONITOR)[-1]
    assert pod_monitor["kind"] == "PodMonitor"
    res = kubectl("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(pod_monitor), check=False)
    assert res.returncode != 0
    assert "no matches for kind" in res.stderr


def schedulable(resolved: Resolved, namespace: str) -> Resolved:
    """The fixture minus what only a real GPU cluster has: a RuntimeClass `nvidia`, the PriorityClass
    and a ReadWriteMany storage class. Everything that decides placement stays."""
    return replace(
        resolved,
        namespace=namespace,
        cache=ModelCache(size=resolved.cache.size),  # the test bed's default class, ReadWriteOnce
        scheduling=replace(resolved.scheduling, runtime_class_name=None, priority_class_name=None),
        autoscaling=None,
        replicas=1,
    )


# A user affinity term every test-bed node matches. The GPU product must be ANDed into it: as a
# separate (ORed) term, the 4-GPU pod could land on gpu-l4-0, which has 4 GPUs too.
ANY_KWOK_NODE = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "type", "operator": "In", "values": ["kwok"]}]}
            ]
        }
    }
}


@pytest.mark.parametrize(
    ("resolved", "node"),
    [
        (PRODUCTION_VLLM, "gpu-l4-"),
        (replace(PRODUCTION_VLLM_70B_TP, scheduling=Scheduling(affinity=ANY_KWOK_NODE)), "gpu-h100-"),
    ],
    ids=["l4", "h100-tp4"],
)
def test_gpu_pods_land_on_the_node_with_the_requested_product(
    resolved: Resolved, node: str, namespace: str, api_client: client.ApiClient, kubectl: Kubectl
) -> None:
    objects = [o for o in render(schedulable(resolved, namespace)) if o["kind"] != "PodMonitor"]
    kubectl(
        "apply",
        "--server-side",
        "--field-manager=llmstage",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )
    core = client.CoreV1Api(api_client)
    selector = selector_string(resolved.name, resolved.runtime)

    def scheduled_node() -> str | None:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        return pods[0].spec.node_name if pods and pods[0].spec.node_name else None

    # Any node of the product (the test bed has one L4 node and four H100 nodes).
    assert wait_until(scheduled_node, timeout=60, what=f"a {resolved.name} pod scheduled").startswith(node)


@pytest.mark.parametrize("case", sorted(CASES))
def test_pods_meet_the_restricted_pod_security_standard(case: str, namespace: str, kubectl: Kubectl) -> None:
    """The API server's PodSecurity admission, enforcing `restricted`, admits every pod we render."""
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    resolved, facts = CASES[case]
    workload = next(
        o
        for o in render(replace(resolved, namespace=namespace), facts)
        if o["kind"] in ("Deployment", "LeaderWorkerSet")
    )
    if workload["kind"] == "Deployment":
        templates = [workload["spec"]["template"]]
    else:  # a multi-node group: the leader's and the workers' pods
        group = workload["spec"]["leaderWorkerTemplate"]
        templates = [group["leaderTemplate"], group["workerTemplate"]]
    for index, template in enumerate(templates):
        name = f"{workload['metadata']['name']}-{index}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, **template["metadata"]},
            "spec": template["spec"],
        }
        # Cluster-scoped objects the test bed lacks; admission would reject the pod for them alone.
        pod["spec"].pop("runtimeClassName", None)
        pod["spec"].pop("priorityClassName", None)
        # The ServiceAccount admission plugin rejects a pod whose spec.pod.serviceAccountName is missing.
        if "serviceAccountName" in pod["spec"] and index == 0:
            kubectl("create", "serviceaccount", pod["spec"]["serviceAccountName"], "-n", namespace)
        res = kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod))
        assert "PodSecurity" not in res.stderr, res.stderr
