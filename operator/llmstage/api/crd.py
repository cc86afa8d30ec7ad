"""Generate the LLMService CustomResourceDefinition from the pydantic models.

Pydantic emits JSON Schema 2020-12; the API server wants a *structural* OpenAPI v3 schema. The
translation inlines every $ref, turns `X | None` into an optional X (absence is how Kubernetes
says "unset"), drops titles and `default: null`, rewrites exclusive bounds into OpenAPI 3.0 form
and keeps descriptions, defaults, enums, bounds, patterns and the x-kubernetes-* extensions.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from llmstage.api.constants import GROUP, KIND, MAX_NAME_LENGTH, PLURAL, VERSION
from llmstage.api.models import LLMService
from llmstage.api.spec import LLMServiceSpec
from llmstage.api.status import LLMServiceStatus
from pydantic import BaseModel

SHORT_NAMES = ["llms", "llmsvc"]
CRD_NAME = f"{PLURAL}.{GROUP}"

# Keys that carry over from JSON Schema to the structural schema unchanged.
_KEPT = {
    "type", "description", "default", "enum", "format", "pattern",
    "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
    "minProperties", "maxProperties", "required", "nullable",
}  # fmt: skip

# Key order in the generated YAML: what a reader looks for first comes first.
_ORDER = {k: i for i, k in enumerate([
    "description", "type", "format", "enum", "default", "minimum", "exclusiveMinimum", "maximum",
    "exclusiveMaximum", "minLength", "maxLength", "pattern", "minItems", "maxItems", "minProperties",
    "maxProperties", "anyOf", "x-kubernetes-int-or-string", "required", "properties", "items",
    "additionalProperties",
])}  # fmt: skip

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Stage", "type": "string", "jsonPath": ".spec.stage", "description": "Lifecycle stage."},
    {"name": "Runtime", "type": "string", "jsonPath": ".status.runtime", "description": "Runtime in use."},
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.name", "description": "Model served."},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        "description": "Whether the endpoint serves the model.",
    },
    {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas", "description": "Pods running."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {
        "name": "Endpoint",
        "type": "string",
        "jsonPath": ".status.endpoint",
        "priority": 1,
        "description": "OpenAI-compatible base URL.",
    },
]


def _structural(node: Any, defs: dict[str, Any]) -> Any:  # noqa: C901 - one branch per JSON Schema keyword it translates
    """Translate one JSON Schema node (recursively) into its structural OpenAPI v3 form."""
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:  # a reference plus field-level keys (description, default) next to it
        target = copy.deepcopy(defs[node.pop("$ref").split("/")[-1]])
        target.update(node)  # the field's own description wins over the model's docstring
        node = target
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {options} structurally; use a single type")
        merged = dict(options[0])
        merged.update(node)  # field-level description and default over the type's own
        return _structural(merged, defs)
    if node.get("default", 0) is None:
        del node["default"]
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "x-kubernetes-validations":
            out.setdefault(key, []).extend(value)
        elif key in _KEPT or key.startswith("x-kubernetes-"):
            out[key] = value
        elif key == "exclusiveMinimum":  # JSON Schema 2020-12 number -> OpenAPI 3.0 boolean
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out["properties"] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out["items"] = _structural(value, defs)
        elif key == "anyOf":  # int-or-string: plain type branches only
            out["anyOf"] = [{"type": o["type"]} for o in value]
        elif key == "additionalProperties" and isinstance(value, dict):
            out["additionalProperties"] = _structural(value, defs)
        elif key == "propertyNames":
            out.setdefault("x-kubernetes-validations", []).append(_key_rule(value))
        # title, $defs, additionalProperties: false (pruning does that) and the rest are dropped.
    if "x-kubernetes-preserve-unknown-fields" in out:
        out.setdefault("type", "object")
    if not out.get("required", True):
        del out["required"]
    return dict(sorted(out.items(), key=lambda kv: _ORDER.get(kv[0], len(_ORDER))))


def _key_rule(names: dict[str, Any]) -> dict[str, str]:
    """A CEL rule on map keys, for pydantic's propertyNames (OpenAPI v3 cannot constrain keys)."""
    checks, words = [], []
    if "maxLength" in names:
        checks.append(f"size(k) <= {names['maxLength']}")
        words.append(f"at most {names['maxLength']} characters")
    if "pattern" in names:
        # A CEL string literal: backslashes and quotes of the regex escaped.
        literal = names["pattern"].replace("\\", "\\\\").replace("'", "\\'")
        checks.append(f"k.matches('{literal}')")
        words.append(f"match {names['pattern']}")
    return {"rule": f"self.all(k, {' && '.join(checks)})", "message": f"keys must be {' and '.join(words)}"}


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    out: dict[str, Any] = _structural(raw, defs)
    return out


def openapi_schema() -> dict[str, Any]:
    """The whole LLMService schema: apiVersion, kind, metadata, spec and status."""
    spec = model_schema(LLMServiceSpec)
    status = model_schema(LLMServiceStatus)
    return {
        "type": "object",
        "description": (LLMService.__doc__ or "").strip(),
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "APIVersion defines the versioned schema of this representation of an object.",
            },
            "kind": {"type": "string", "description": "Kind is the REST resource this object represents."},
            # The API server allows only restrictions on name and generateName here, not even a description.
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {
                        "description": f"Name of the LLMService and of the Service clients call; at most "
                        f"{MAX_NAME_LENGTH} characters, starting with a letter.",
                        "type": "string",
                        "maxLength": 253,
                    }
                },
            },
            "spec": spec,
            "status": status,
        },
        "x-kubernetes-validations": [rule.to_schema() for rule in LLMService.cel_rules],
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a dict, ready to apply or dump."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/name": "llmstage", "app.kubernetes.io/component": "crd"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": SHORT_NAMES,
                "categories": ["llmstage"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                }
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Block style, long lines kept whole, multi-line strings as literal blocks."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def crd_yaml() -> str:
    """The CRD as YAML, exactly as committed in crds/llmservices.llmstage.io.yaml."""
    header = (
        "# Generated by `llmstage crd` (make generate) from operator/llmstage/api/models.py. Do not edit.\n"
    )
    body = yaml.dump(crd(), Dumper=_Dumper, sort_keys=False, width=1_000_000, default_flow_style=False)
    return header + "---\n" + body
