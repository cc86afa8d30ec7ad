"""What every part of the API is built from: the base model, cross-field rules, quantities, the
string patterns, and references to Secrets and other objects of the LLMService's namespace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Self

from llmstage.api.quantity import QUANTITY_PATTERN, is_quantity
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel


@dataclass(frozen=True)
class CelRule:
    """One cross-field rule, written twice on purpose: CEL for the API server, Python for pydantic.

    Tests run every invalid example through both, so the two spellings cannot drift apart.
    """

    rule: str  # CEL with `self` bound to the object the rule is attached to
    message: str  # names the field and the fix
    check: Callable[[Any], bool]  # True when valid, same semantics as `rule`
    field_path: str | None = None  # where the API server reports the error, relative to `self`

    def to_schema(self) -> dict[str, str]:
        out = {"rule": self.rule, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        return out


def _add_cel_rules(schema: dict[str, Any], cls: type) -> None:
    rules: tuple[CelRule, ...] = getattr(cls, "cel_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [r.to_schema() for r in rules]


def cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


class ApiModel(BaseModel):
    """Base of every API object: camelCase on the wire, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        json_schema_extra=_add_cel_rules,
    )
    cel_rules: ClassVar[tuple[CelRule, ...]] = ()

    @model_validator(mode="after")
    def _check_cel_rules(self) -> Self:
        for rule in self.cel_rules:
            if not rule.check(self):
                raise ValueError(rule.message)
        return self


def _quantity_str(value: object) -> object:
    # YAML `cpu: 2` arrives as an int; keep quantities as strings from here on.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _check_quantity(value: str) -> str:
    if not is_quantity(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 8Gi, 500m, 2)")
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_quantity_str),
    AfterValidator(_check_quantity),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,  # applies to strings only
            "minimum": 0,  # and this to integers only: -2 is no quantity we accept either
        }
    ),
]

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A Gateway API Hostname: a DNS name, optionally with a leading wildcard label.
HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
QUALIFIED_NAME = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"  # noqa: E501
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# An image reference: [registry[:port]/]path[:tag][@digest]; printable, no spaces.
IMAGE = r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$"
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
# A served model name travels in JSON bodies and URLs: printable, no whitespace.
SERVED_MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"
HUGGING_FACE_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"
QUANTIZATION = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# Ollama keep_alive: a Go duration ("10m", "24h", "1h30m") or seconds; negative keeps the model loaded.
DURATION = r"^-?([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)?)+$"

# A Kubernetes object's name (most kinds): the LLMService's own, and those of the objects it names.
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
