"""The Helm chart offline: `helm lint --strict`, `helm template` against the Kubernetes schemas,
the values schema, the security invariants for every mode, and the generated files' drift
(chart CRDs and package files, manifests/, docs/api.md)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from testkit.chart import CHART, HELM, REPO, set_args, template, wildcard_or_secret_rules

pytestmark = pytest.mark.skipif(not HELM.exists(), reason="needs .tools/bin/helm (make tools)")

KUBERNETES_VERSION = kubernetes_validate.latest_version()
# The install's serving defaults as a platform team on OpenShift with a GPU pool would set them.
SERVING_DEFAULTS = """
imageRegistry: registry.internal:5000/dockerhub
imagePullSecrets: [{name: mirror-pull}]
podLabels: {sidecar.istio.io/inject: "false"}
podAnnotations: {logs.example.com/ship: "true"}
scheduling: {nodeSelector: {pool: llm}, priorityClassName: llm-serving}
gpuScheduling:
  runtimeClassName: nvidia
  tolerations: [{key: gpu-pool, operator: Exists, effect: NoSchedule}]
podSecurityContext: {platformAssignsIds: true}
podMonitor: {labels: {release: kube-prometheus-stack}}
"""
# Value sets covering every template branch.
MODES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "cluster-patterns": {"watchNamespaces": ["team-*", "!team-x"]},
    "cluster-names": {"watchNamespaces": ["team-a", "team-b"]},
    "namespaced": {"rbac.scope": "namespaced", "watchNamespaces": ["team-a", "team-b"]},
    "everything-on": {
        "metrics.serviceMonitor.enabled": True,
        "metrics.serviceMonitor.labels": {"release": "prometheus"},
        "argocd.healthCheckConfigMap": True,
        "image.digest": "sha256:" + "a" * 64,
        "imagePullSecrets": [{"name": "regcred"}],
        "serviceAccount.annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"},
        "podAnnotations": {"a": "b"},
        "podLabels": {"team": "ml"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {}},
        "priorityClassName": "system-cluster-critical",
        "metrics.prometheusRule.enabled": True,
        "metrics.prometheusRule.labels": {"release": "prometheus"},
        "metrics.grafanaDashboard.enabled": True,
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}
        ],
    },
    "one-replica-no-election": {"replicaCount": 1, "leaderElection.enabled": False},
    # OpenShift's restricted-v2 assigns the UID itself: no pod security context at all.
    "openshift-null-security-contexts": {"podSecurityContext": None, "securityContext": None},
    "extras": {
        "extraEnv": [
            {"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        ],
        "extraArgs": ["--log-level=debug"],
        "extraVolumes": [
            {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
            {"name": "ca", "configMap": {"name": "corp-ca"}},
        ],
        "extraVolumeMounts": [
            {"name": "token", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True},
            {"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True},
        ],
        "serviceAccount.automount": False,
        "livenessProbe": {
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 6,
        },
        "readinessProbe": {"initialDelaySeconds": 1, "periodSeconds": 2, "successThreshold": 2},
        "metrics.serviceMonitor.enabled": True,
        "metrics.serviceMonitor.namespace": "monitoring",
        "metrics.serviceMonitor.scrapeTimeout": "10s",
        "metrics.serviceMonitor.relabelings": [
            {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node", "action": "replace"},
            {"regex": "pod_template_hash", "action": "labeldrop"},
        ],
    },
    "probes-off": {"livenessProbe.enabled": False, "readinessProbe.enabled": False},
    "serving-defaults": {"servingDefaults": yaml.safe_load(SERVING_DEFAULTS)},
    "crd-template-no-rbac-helm-test": {
        "crds.enabled": True,
        "crds.annotations": {"argocd.argoproj.io/sync-options": "ServerSideApply=true"},
        "rbac.create": False,
        "tests.servedModel": {
            "llmService": "chat",
            "namespace": "llm-prod",
            "model": "llama3.1:8b",
            "apiKeySecretRef": {"name": "chat-api-key"},
        },
    },
    "everything-off": {
        "admissionPolicy.enabled": False,
        "admissionPolicy.tenancy": False,
        "metrics.service.enabled": False,
    },
}
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {"type": "object", "required": ["matchLabels"]},
                "namespaceSelector": {"type": "object"},
                "endpoints": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "honorLabels": {"type": "boolean"},
                            "scheme": {"enum": ["http", "https"]},
                            "bearerTokenFile": {"type": "string"},
                            "tlsConfig": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "insecureSkipVerify": {"type": "boolean"},
                                    "serverName": {"type": "string"},
                                    "ca": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "properties": {
                                            "secret": {
                                                "type": "object",
                                                "additionalProperties": False,
                                                "required": ["key"],
                                                "properties": {
                                                    "name": {"type": "string"},
                                                    "key": {"type": "string"},
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                            "interval": {
                                "type": "string",
                                "pattern": "^(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?$",
                            },
                            "scrapeTimeout": {
                                "type": "string",
                                "pattern": "^(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?$",
                            },
                            "relabelings": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "sourceLabels": {
                                            "type": "array",
                                            "items": {
                                                "type": "string",
                                                "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$",
                                            },
                                        },
                                        "separator": {"type": "string"},
                                        "targetLabel": {"type": "string"},
                                        "regex": {"type": "string"},
                                        "modulus": {"type": "integer", "minimum": 1},
                                        "replacement": {"type": "string"},
                                        "action": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


# The parts of monitoring.coreos.com/v1 PrometheusRule the chart uses (the Prometheus Operator's
# CRD schema, abridged); the rules' PromQL is checked in test_monitoring.py.
PROMETHEUS_RULE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string"},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["expr"],
                                    "properties": {
                                        "alert": {"type": "string"},
                                        "record": {"type": "string"},
                                        "expr": {"type": "string"},
                                        "for": {"type": "string"},
                                        "labels": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                        "annotations": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELM), *args], capture_output=True, text=True)


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_helm_lint_strict_is_clean(mode: str) -> None:
    res = helm("lint", "--strict", str(CHART), *set_args(MODES[mode]))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "[WARNING]" not in res.stdout and "[ERROR]" not in res.stdout, res.stdout


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_rendered_object_passes_the_kubernetes_schema_strictly(mode: str) -> None:
    docs = template(MODES[mode])
    assert docs
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
        elif doc["kind"] == "PrometheusRule":
            jsonschema.validate(doc, PROMETHEUS_RULE_SCHEMA)
        else:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_rbac_has_no_wildcards_no_secrets_and_release_unique_cluster_names(mode: str) -> None:
    docs = template(MODES[mode], release="rel-a")
    for role in of_kind(docs, "ClusterRole") + of_kind(docs, "Role"):
        assert wildcard_or_secret_rules(role["rules"]) == []
    for doc in docs:
        if doc["kind"] not in ("CustomResourceDefinition",) and "namespace" not in doc["metadata"]:
            assert doc["metadata"]["name"].startswith("rel-a"), (
                f"cluster-scoped {doc['kind']} not release-named"
            )


def test_namespaced_mode_renders_roles_per_namespace_and_nothing_cluster_scoped_for_rbac() -> None:
    """Except secure metrics' reviews, which have no namespace (metrics.secure false drops them)."""
    docs = template(MODES["namespaced"])
    cluster_scoped = {
        d["metadata"]["name"] for d in of_kind(docs, "ClusterRole") + of_kind(docs, "ClusterRoleBinding")
    }
    assert cluster_scoped == {"llmstage-metrics-auth", "llmstage-metrics-reader"}
    docs = template({**MODES["namespaced"], "metrics.secure": False})
    assert not of_kind(docs, "ClusterRole") and not of_kind(docs, "ClusterRoleBinding")
    roles = [r for r in of_kind(docs, "Role") if not r["metadata"]["name"].endswith("-leader-election")]
    bindings = [
        b for b in of_kind(docs, "RoleBinding") if not b["metadata"]["name"].endswith("-leader-election")
    ]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    args = of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args and "--all-namespaces" not in args


def test_namespace_patterns_add_namespace_list_and_watch_only_when_needed() -> None:
    def namespace_rules(values: dict[str, Any]) -> list[dict[str, Any]]:
        role = of_kind(template(values), "ClusterRole")[0]
        return [r for r in role["rules"] if "namespaces" in r["resources"]]

    assert namespace_rules({}) == []
    assert namespace_rules(MODES["cluster-names"]) == []
    assert namespace_rules(MODES["cluster-patterns"]) == [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rbac.scope": "namespaced"}, "needs watchNamespaces"),
        ({"rbac.scope": "namespaced", "watchNamespaces": ["team-*"]}, "exact namespace names"),
        ({"rbac.scope": "clusterwide"}, "rbac/scope"),
        ({"unknownValue": 1}, "additional properties 'unknownValue' not allowed"),
        ({"image.tag": "has space"}, "/image/tag"),
        ({"operator.logLevel": "verbose"}, "/operator/logLevel"),
        ({"metrics.port": 0}, "/metrics/port"),
        ({"metrics.serviceMonitor.enabled": True, "metrics.service.enabled": False}, "needs metrics.service"),
        ({"extraEnv": [{"name": "POD_NAME", "value": "x"}]}, "extraEnv: POD_NAME is set by the chart"),
        ({"extraEnv": [{"value": "no name"}]}, "/extraEnv/0"),
        ({"extraArgs": "--log-level=debug"}, "/extraArgs"),
        (
            {"extraVolumes": [{"name": "tmp", "emptyDir": {}}]},
            "extraVolumes: the volume name tmp is the chart's",
        ),
        ({"extraVolumeMounts": [{"name": "x", "mountPath": "/tmp/"}]}, "the path /tmp are the chart's"),
        ({"extraVolumeMounts": [{"name": "x", "mountPath": "etc"}]}, "/extraVolumeMounts/0/mountPath"),
        ({"extraVolumeMounts": [{"name": "x", "mountpath": "/etc/x"}]}, "/extraVolumeMounts/0"),
        ({"podSecurityContext.runAsUsr": 1000}, "additional properties 'runAsUsr' not allowed"),
        ({"securityContext.readOnlyRootFS": True}, "additional properties 'readOnlyRootFS' not allowed"),
        ({"livenessProbe.periodSecond": 5}, "additional properties 'periodSecond' not allowed"),
        ({"readinessProbe.timeoutSeconds": 0}, "/readinessProbe/timeoutSeconds"),
        ({"livenessProbe.httpGet": {"path": "/x"}}, "additional properties 'httpGet' not allowed"),
        ({"serviceAccount.automount": "yes"}, "/serviceAccount/automount"),
        ({"metrics.serviceMonitor.scrapeTimeout": "10"}, "/metrics/serviceMonitor/scrapeTimeout"),
        ({"metrics.serviceMonitor.namespace": "Monitoring"}, "/metrics/serviceMonitor/namespace"),
        (
            {"metrics.serviceMonitor.relabelings": [{"action": "rename"}]},
            "/metrics/serviceMonitor/relabelings/0/action",
        ),
        (
            {"metrics.serviceMonitor.relabelings": [{"target_label": "x"}]},
            "additional properties 'target_label'",
        ),
        (
            {"tolerations": [{"key": "gpu", "replicaCount": 1}]},
            "additional properties 'replicaCount' not allowed",
        ),
        ({"servingDefaults": {"imageRegistri": "r"}}, "additional properties 'imageRegistri' not allowed"),
        ({"servingDefaults": {"gpuScheduling": {"runtimeClass": "x"}}}, "'runtimeClass' not allowed"),
        ({"servingDefaults": {"imageRegistry": "https://r"}}, "/servingDefaults/imageRegistry"),
        ({"servingDefaults": {"podSecurityContext": {"runAsUser": 0}}}, "/podSecurityContext/runAsUser"),
        ({"servingDefaults": {"podLabels": {"llmstage.io/x": "y"}}}, "the prefixes app.kubernetes.io/"),
        ({"servingDefaults": {"podMonitor": {"labels": {"app.kubernetes.io/x": "y"}}}}, "podMonitor.labels"),
        (
            {"servingDefaults": {"podSecurityContext": {"platformAssignsIds": True, "fsGroup": 5}}},
            "platformAssignsIds leaves runAsUser",
        ),
    ],
)
def test_bad_values_fail_with_a_message_naming_the_value(values: dict[str, Any], message: str) -> None:
    res = helm("template", "x", str(CHART), *set_args(values))
    assert res.returncode != 0
    assert message in res.stderr, res.stderr


def test_the_operator_deployment_is_two_hardened_replicas_that_elect_a_leader() -> None:
    docs = template({}, release="rel", namespace="ops")
    deployment = of_kind(docs, "Deployment")[0]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    # New pods become ready (warm cache) before old ones stop.
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = spec["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["image"] == "ghcr.io/llmstage/llmstage:0.1.0"  # appVersion
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    args = container["args"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in args
    assert "--metrics-port=9090" in args and "--all-namespaces" in args
    assert {
        "--leader-elect",
        "--leader-elect-namespace=ops",
        "--leader-elect-lease-name=rel-llmstage",
        "--leader-elect-lease-duration=15s",
        "--leader-elect-renew-deadline=10s",
        "--leader-elect-retry-period=2s",
    } <= set(args)
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
    # The operator's own pod must not look like a serving pod it watches (app.kubernetes.io/name=llmstage).
    assert spec["template"]["metadata"]["labels"]["app.kubernetes.io/name"] != "llmstage"
    # Spread over nodes, softly: a one-node cluster still runs both.
    selector = spec["selector"]["matchLabels"]
    assert pod["topologySpreadConstraints"] == [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector},
        }
    ]
    (pdb,) = of_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
        "selector": {"matchLabels": selector},
    }
    assert pdb["metadata"]["namespace"] == "ops"


def test_own_spread_constraints_get_the_pod_selector() -> None:
    pod = of_kind(template(MODES["everything-on"]), "Deployment")[0]["spec"]["template"]["spec"]
    (constraint,) = pod["topologySpreadConstraints"]
    assert constraint["topologyKey"] == "topology.kubernetes.io/zone"
    assert constraint["labelSelector"]["matchLabels"]["app.kubernetes.io/name"] == "llmstage-operator"


def test_leader_election_off_means_one_replica_recreated_and_no_lease_rights() -> None:
    docs = template(MODES["one-replica-no-election"])
    spec = of_kind(docs, "Deployment")[0]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert "--no-leader-elect" in spec["template"]["spec"]["containers"][0]["args"]
    assert not of_kind(docs, "PodDisruptionBudget")
    assert not [r for r in of_kind(docs, "Role") if "leases" in str(r["rules"])]
    res = helm("template", "x", str(CHART), *set_args({"leaderElection.enabled": False}))
    assert res.returncode != 0 and "replicaCount > 1 needs leaderElection.enabled" in res.stderr


@pytest.mark.parametrize("mode", sorted(MODES))
def test_lease_rights_are_one_lease_in_the_release_namespace_only(mode: str) -> None:
    docs = template(MODES[mode], release="rel", namespace="ops")
    lease_rules = [
        (doc, rule)
        for doc in of_kind(docs, "Role") + of_kind(docs, "ClusterRole")
        for rule in doc["rules"]
        if "coordination.k8s.io" in rule.get("apiGroups", [])
    ]
    if mode == "one-replica-no-election" or MODES[mode].get("rbac.create") is False:
        assert lease_rules == []
        return
    assert {doc["kind"] for doc, _ in lease_rules} == {"Role"}
    assert {doc["metadata"]["namespace"] for doc, _ in lease_rules} == {"ops"}
    assert sorted((tuple(r["verbs"]), tuple(r.get("resourceNames", []))) for _, r in lease_rules) == [
        (("create",), ()),
        (("get", "watch", "update"), ("rel-llmstage",)),
    ]
    (binding,) = [
        b for b in of_kind(docs, "RoleBinding") if b["metadata"]["name"] == "rel-llmstage-leader-election"
    ]
    assert binding["metadata"]["namespace"] == "ops"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-llmstage", "namespace": "ops"}]


def test_the_alerting_rules_and_the_dashboard_are_the_chart_files() -> None:
    docs = template(MODES["everything-on"])
    (rule,) = of_kind(docs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    (dashboard,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["llmstage.json"]) == json.loads(
        (CHART / "files" / "grafana-dashboard.json").read_text()
    )
    (monitor,) = of_kind(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    defaults = template({})
    assert not of_kind(defaults, "PrometheusRule")
    assert [c["metadata"]["name"] for c in of_kind(defaults, "ConfigMap")] == ["llmstage-tenancy"]


def test_every_default_value_is_described_by_the_values_schema() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(values, schema)

    def walk(value: Any, node: dict[str, Any], path: str) -> list[str]:
        if "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        if not isinstance(value, dict) or "properties" not in node:
            return []
        missing = [f"{path}.{k}" for k in value if k not in node["properties"]]
        return missing + [
            p
            for k, v in value.items()
            if k in node["properties"]
            for p in walk(v, node["properties"][k], f"{path}.{k}")
        ]

    assert walk(values, schema, "") == []
    assert set(schema["properties"]) - {"global"} == set(values), "schema describes values that do not exist"


def test_optional_extras_render_when_enabled() -> None:
    docs = template(MODES["everything-on"])
    (monitor,) = of_kind(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (config_map,) = [
        c
        for c in of_kind(docs, "ConfigMap")
        if not c["metadata"]["name"].endswith(("-dashboard", "-tenancy"))
    ]
    lua = config_map["data"]["resource.customizations.health.llmstage.io_LLMService"]
    assert lua.strip() == (CHART / "files" / "argocd-health.lua").read_text().strip()
    (deployment,) = of_kind(docs, "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith("@sha256:" + "a" * 64)
    off = template(MODES["everything-off"])
    assert not of_kind(off, "Service") and not of_kind(off, "ValidatingAdmissionPolicy")


def test_admission_policy_and_binding_are_renamed_per_release_and_still_point_at_each_other() -> None:
    docs = template({}, release="rel-b")
    policies = {p["metadata"]["name"]: p for p in of_kind(docs, "ValidatingAdmissionPolicy")}
    bindings = {b["metadata"]["name"]: b for b in of_kind(docs, "ValidatingAdmissionPolicyBinding")}
    assert set(policies) == set(bindings) == {"rel-b-llmstage", "rel-b-llmstage-tenancy"}
    for name, binding in bindings.items():
        assert binding["spec"]["policyName"] == name
    assert bindings["rel-b-llmstage"]["spec"]["validationActions"] == ["Warn"]
    assert bindings["rel-b-llmstage-tenancy"]["spec"]["validationActions"] == ["Deny"]


def test_the_tenancy_values_reach_the_operator_and_the_admission_policys_parameters() -> None:
    """One set of values, two enforcers: the operator's flags and the policy's ConfigMap agree."""
    values = {
        "tenancy": {
            "allowedVolumeTypes": ["configMap", "hostPath"],
            "allowedCSIDrivers": ["secrets-store.csi.k8s.io"],
            "allowedServiceAccounts": ["irsa", "team-a/reader"],
            "allowServiceAccountToken": True,
        }
    }
    docs = template(values, release="rel-b")
    (deployment,) = of_kind(docs, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {
        "--allowed-volume-types=configMap,hostPath",
        "--allowed-csi-drivers=secrets-store.csi.k8s.io",
        "--allowed-service-accounts=irsa,team-a/reader",
        "--allow-service-account-token",
    } <= set(args)
    (params,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "rel-b-llmstage-tenancy"]
    from llmstage.cli import build_parser
    from llmstage.cli.run import tenancy_policy
    from llmstage.gitops.tenancy_admission import tenancy_params

    parsed = build_parser().parse_args(["run", *[a for a in args if a.startswith("--allow")]])
    assert params["data"] == tenancy_params(tenancy_policy(parsed), "x")["data"]
    (binding,) = [
        b
        for b in of_kind(docs, "ValidatingAdmissionPolicyBinding")
        if b["metadata"]["name"].endswith("-tenancy")
    ]
    assert binding["spec"]["paramRef"]["name"] == params["metadata"]["name"]
    assert binding["spec"]["paramRef"]["namespace"] == params["metadata"]["namespace"]


def test_the_tenant_roles_manage_llmservices_only_and_aggregate_into_the_default_roles() -> None:
    roles = {r["metadata"]["name"]: r for r in of_kind(template({}), "ClusterRole")}
    edit, view = roles["llmstage-edit"], roles["llmstage-view"]
    assert {r for rule in edit["rules"] + view["rules"] for r in rule["resources"]} == {
        "llmservices",
        "llmservices/status",
    }
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert not any("*" in rule["verbs"] for rule in edit["rules"] + view["rules"])
    off = template({"rbac": {"create": False, "scope": "cluster"}})
    assert not [d for d in off if d["apiVersion"].startswith("rbac.authorization.k8s.io")]


def test_secure_metrics_args_volume_and_service_monitor() -> None:
    monitor_on = {"metrics.serviceMonitor.enabled": True}
    docs = template(monitor_on)
    (deployment,) = of_kind(docs, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--metrics-secure" in args and not any(a.startswith("--metrics-cert-dir") for a in args)
    (monitor,) = of_kind(docs, "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https" and endpoint["tlsConfig"] == {"insecureSkipVerify": True}
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"

    docs = template({**monitor_on, "metrics.tls.secretName": "metrics-tls"})
    pod = of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
    assert "--metrics-cert-dir=/etc/llmstage/metrics-tls" in pod["containers"][0]["args"]
    assert {"name": "metrics-tls", "mountPath": "/etc/llmstage/metrics-tls", "readOnly": True} in pod[
        "containers"
    ][0]["volumeMounts"]
    assert any(v.get("secret", {}).get("secretName") == "metrics-tls" for v in pod["volumes"])
    tls = of_kind(docs, "ServiceMonitor")[0]["spec"]["endpoints"][0]["tlsConfig"]
    assert tls == {
        "ca": {"secret": {"name": "metrics-tls", "key": "ca.crt"}},
        "serverName": "llmstage-metrics.llmstage-system.svc",
    }

    docs = template({**monitor_on, "metrics.secure": False})
    assert (
        "--no-metrics-secure"
        in of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    assert "scheme" not in of_kind(docs, "ServiceMonitor")[0]["spec"]["endpoints"][0]
    assert not [r for r in of_kind(docs, "ClusterRole") if "metrics" in r["metadata"]["name"]]


def test_the_chart_crd_is_the_generated_crd() -> None:
    chart_crds = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    repo_crds = {p.name: p.read_text() for p in (REPO / "crds").glob("*.yaml")}
    assert chart_crds == repo_crds, "charts/llmstage/crds differs from crds/: run make generate"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate_delivery", REPO / "hack" / "generate_delivery.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_delivery"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated() -> dict[Path, str]:
    return _generator().expected()


@pytest.mark.parametrize("group", ["charts/llmstage", "manifests", "docs/api.md"])
def test_generated_files_are_up_to_date(generated: dict[Path, str], group: str) -> None:
    files = {p: t for p, t in generated.items() if p.relative_to(REPO).as_posix().startswith(group)}
    assert files
    stale = [str(p.relative_to(REPO)) for p, text in files.items() if not p.exists() or p.read_text() != text]
    assert stale == [], f"out of date: {stale}; run make generate"
    if group == "manifests":
        assert _generator().stale_manifests(generated) == []


def test_manifests_equal_the_chart_defaults() -> None:
    """Every object of `helm template` with default values is in manifests/, and nothing else but
    the Namespace (labels aside: Helm's bookkeeping labels are dropped)."""

    def key(d: dict[str, Any]) -> tuple[str, str]:
        return d["kind"], d["metadata"]["name"]

    def strip(d: dict[str, Any]) -> dict[str, Any]:
        d = yaml.safe_load(yaml.safe_dump(d))
        for meta in (d["metadata"], d.get("spec", {}).get("template", {}).get("metadata", {})):
            meta.pop("labels", None)
        return d

    chart = {key(d): strip(d) for d in template({})}
    kustomized = {}
    for path in (REPO / "manifests").glob("*.yaml"):
        if path.name != "kustomization.yaml":
            kustomized.update({key(d): strip(d) for d in yaml.safe_load_all(path.read_text()) if d})
    assert kustomized.pop(("Namespace", "llmstage-system"))
    assert kustomized == chart


def _operator_pod(values: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = of_kind(template(values), "Deployment")[0]["spec"]["template"]["spec"]
    return spec


def test_null_pod_security_context_leaves_the_uid_to_the_platform() -> None:
    pod = _operator_pod({"podSecurityContext": None})
    assert "securityContext" not in pod
    # The container's own context stays: restricted-v2 accepts it with any assigned UID.
    assert pod["containers"][0]["securityContext"]["runAsNonRoot"] is True
    pod = _operator_pod({"podSecurityContext.runAsUser": None, "podSecurityContext.runAsGroup": None})
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert "securityContext" not in _operator_pod({"securityContext": None})["containers"][0]


def test_security_contexts_are_values_with_the_hardened_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    pod = _operator_pod({})
    assert pod["securityContext"] == values["podSecurityContext"]
    assert pod["containers"][0]["securityContext"] == values["securityContext"]
    pod = _operator_pod({"podSecurityContext": {"runAsNonRoot": True, "fsGroup": 2000}})
    # A map given by the user is merged with the defaults by Helm; null removes a key.
    assert pod["securityContext"]["fsGroup"] == 2000 and pod["securityContext"]["runAsUser"] == 65532


def test_extra_env_args_and_volumes_come_after_the_charts_own() -> None:
    extras = MODES["extras"]
    pod = _operator_pod(extras)
    (container,) = pod["containers"]
    assert [e["name"] for e in container["env"]] == ["POD_NAME", "POD_NAMESPACE", "HTTPS_PROXY", "NODE"]
    assert container["env"][2:] == extras["extraEnv"]
    assert container["args"][-1] == "--log-level=debug"
    assert container["args"].index("--log-level=info") < container["args"].index("--log-level=debug")
    assert pod["volumes"][0]["name"] == "tmp" and pod["volumes"][1:] == extras["extraVolumes"]
    assert container["volumeMounts"][0] == {"name": "tmp", "mountPath": "/tmp"}
    assert container["volumeMounts"][1:] == extras["extraVolumeMounts"]


def test_automount_false_reaches_the_service_account_and_the_pod() -> None:
    docs = template({"serviceAccount.automount": False})
    assert of_kind(docs, "ServiceAccount")[0]["automountServiceAccountToken"] is False
    assert of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert _operator_pod({})["automountServiceAccountToken"] is True


def test_probe_timings_are_values_and_the_endpoints_stay_healthz_and_readyz() -> None:
    (container,) = _operator_pod(MODES["extras"])["containers"]
    assert container["livenessProbe"] == {
        "httpGet": {"path": "/healthz", "port": "health"},
        "initialDelaySeconds": 30,
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "failureThreshold": 6,
    }
    readiness = container["readinessProbe"]
    assert readiness["httpGet"] == {"path": "/readyz", "port": "health"}
    # Keys not given keep the chart's default (Helm merges maps).
    assert (readiness["initialDelaySeconds"], readiness["periodSeconds"], readiness["timeoutSeconds"]) == (
        1,
        2,
        5,
    )
    assert readiness["successThreshold"] == 2
    (container,) = _operator_pod(MODES["probes-off"])["containers"]
    assert "livenessProbe" not in container and "readinessProbe" not in container


def test_service_monitor_namespace_timeout_and_relabelings() -> None:
    docs = template(MODES["extras"], namespace="ops")
    (monitor,) = of_kind(docs, "ServiceMonitor")
    assert monitor["metadata"]["namespace"] == "monitoring"
    # It still finds the metrics Service in the release namespace.
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ops"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["scrapeTimeout"] == "10s"
    assert endpoint["relabelings"] == MODES["extras"]["metrics.serviceMonitor.relabelings"]
    (default,) = of_kind(
        template({"metrics.serviceMonitor.enabled": True}, namespace="ops"), "ServiceMonitor"
    )
    assert default["metadata"]["namespace"] == "ops"
    assert "scrapeTimeout" not in default["spec"]["endpoints"][0]
    assert "relabelings" not in default["spec"]["endpoints"][0]


def test_one_license_everywhere() -> None:
    import tomllib

    spdx = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
    assert spdx == "Apache-2.0"
    license_text = (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text
    assert f'org.opencontainers.image.licenses="{spdx}"' in (REPO / "Dockerfile").read_text()
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["annotations"]["artifacthub.io/license"] == spdx


def test_no_unpublished_project_address_is_presented_as_real() -> None:
    """The project has no public repository or image yet: the chart links to neither, and the
    image default is marked as a placeholder where it is set (NOTES.txt warns at install)."""
    for path in [CHART / "Chart.yaml", *sorted((CHART / "templates").glob("*"))]:
        text = path.read_text()
        assert "github.com/llmstage" not in text and "githubusercontent.com" not in text, path
    values = (CHART / "values.yaml").read_text()
    placeholder = yaml.safe_load(values)["image"]["repository"]
    assert "PLACEHOLDER" in values.split(f"repository: {placeholder}")[0].rsplit("image:", 1)[1]
    assert f'eq .Values.image.repository "{placeholder}"' in (CHART / "templates" / "NOTES.txt").read_text()
    assert "github.com/llmstage" not in (REPO / "Dockerfile").read_text()


def test_the_operators_network_policy_admits_the_monitoring_namespace_to_metrics_only() -> None:
    docs = template({"networkPolicy.monitoringNamespace": "prometheus"})
    (policy,) = of_kind(docs, "NetworkPolicy")
    (deployment,) = of_kind(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prometheus"}}}],
            "ports": [{"protocol": "TCP", "port": "metrics"}],
        }
    ]
    assert (
        "--monitoring-namespace=prometheus" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    (closed,) = of_kind(template({"networkPolicy.monitoringNamespace": ""}), "NetworkPolicy")
    assert closed["spec"]["ingress"] == []
    assert not of_kind(template({"networkPolicy.operator": False}), "NetworkPolicy")


def test_serving_defaults_reach_the_operator_as_the_file_it_validates() -> None:
    from llmstage.api.defaults import parse_defaults

    values = yaml.safe_load(SERVING_DEFAULTS)
    objects = template({"servingDefaults": values})
    (config_map,) = [
        o for o in objects if o["kind"] == "ConfigMap" and "serving-defaults" in o["metadata"]["name"]
    ]
    text = config_map["data"]["serving-defaults.yaml"]
    assert parse_defaults(text, "configmap") == parse_defaults(SERVING_DEFAULTS, "values")
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert "--defaults=/etc/llmstage/serving-defaults/serving-defaults.yaml" in container["args"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "serving-defaults")
    assert mount == {
        "name": "serving-defaults",
        "mountPath": "/etc/llmstage/serving-defaults",
        "readOnly": True,
    }
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "serving-defaults")
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    checksum = pod["metadata"]["annotations"]["checksum/serving-defaults"]
    changed = template({"servingDefaults": {**values, "podLabels": {"team": "b"}}})
    other = next(o for o in changed if o["kind"] == "Deployment")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert other["checksum/serving-defaults"] != checksum
    # Without defaults nothing of it is rendered.
    plain = next(o for o in template({}) if o["kind"] == "Deployment")["spec"]["template"]
    assert "--defaults" not in " ".join(plain["spec"]["containers"][0]["args"])
    assert "checksum/serving-defaults" not in plain["metadata"]["annotations"]


def test_crds_enabled_renders_the_generated_crd_as_a_template_kept_on_uninstall() -> None:
    generated = yaml.safe_load(
        (REPO / "crds" / "llmservices.llmstage.io.yaml").read_text().split("---\n", 1)[1]
    )
    (crd,) = of_kind(template({"crds.enabled": True}, include_crds=False), "CustomResourceDefinition")
    assert crd["spec"] == generated["spec"] and crd["metadata"]["name"] == generated["metadata"]["name"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    labels = crd["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "Helm" and labels["app.kubernetes.io/component"] == "crd"
    # Off (the default): only crds/, which Helm installs once.
    assert not of_kind(template({}, include_crds=False), "CustomResourceDefinition")


def test_rbac_create_false_renders_no_roles_and_no_bindings() -> None:
    kinds = {d["kind"] for d in template({"rbac.create": False})}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    assert "ServiceAccount" in kinds and "Deployment" in kinds


def _served_model_pod(values: dict[str, Any]) -> dict[str, Any]:
    (pod,) = [d for d in template(values) if d["kind"] == "Pod"]
    return pod


def test_the_helm_test_asks_the_served_model_for_a_chat_completion() -> None:
    """The test pod's script, run here against a stand-in for the LLMService's Service."""
    import http.server
    import threading

    seen: list[tuple[str, dict[str, Any], str | None]] = []

    class Server(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, body, self.headers.get("Authorization")))
            ok = self.headers.get("Authorization") == "Bearer sk-test"
            payload = {"choices": [{"message": {"content": "Blue."}}]} if ok else {"error": "no key"}
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(payload).encode())

        def log_message(self, *_: Any) -> None:
            pass

    values = MODES["crd-template-no-rbac-helm-test"]
    pod = _served_model_pod(values)
    assert pod["metadata"]["namespace"] == "llm-prod"
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "llmstage-test"  # never the operator's
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["URL"] == "http://chat.llm-prod.svc:8000" and env["MODEL"] == "llama3.1:8b"
    api_key = next(e for e in container["env"] if e["name"] == "API_KEY")
    assert api_key["valueFrom"]["secretKeyRef"] == {"name": "chat-api-key", "key": "api-key"}
    script = container["command"][2]
    server = http.server.HTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        run_env = {"URL": url, "MODEL": "llama3.1:8b", "TIMEOUT": "10", "PATH": "/usr/bin:/bin"}
        answered = subprocess.run(
            [sys.executable, "-c", script],
            env={**run_env, "API_KEY": "sk-test"},
            capture_output=True,
            text=True,
        )
        refused = subprocess.run([sys.executable, "-c", script], env=run_env, capture_output=True, text=True)
    finally:
        server.shutdown()
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout == f"{url}/v1/chat/completions (llama3.1:8b) answered: 'Blue.'\n"
    path, body, auth = seen[0]
    assert path == "/v1/chat/completions" and body["model"] == "llama3.1:8b" and auth == "Bearer sk-test"
    assert body["messages"][0]["role"] == "user"
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "401" in refused.stderr
    assert not [d for d in template({}) if d["kind"] == "Pod"]  # no test unless a service is named
