"""Shared CLI behaviour: one-line errors with exit codes, option parsing, tables."""

from __future__ import annotations

import argparse

import pydantic
import pytest
from llmstage.api.manifest import GPUChoice
from llmstage.api.models import LLMService
from llmstage.api.validation import validation_message
from llmstage.cli.common import (
    CliError,
    format_table,
    guarded,
    parse_gpu,
)


def service(spec: dict) -> dict:  # type: ignore[type-arg]
    return {
        "apiVersion": "llmstage.io/v1alpha1",
        "kind": "LLMService",
        "metadata": {"name": "x"},
        "spec": spec,
    }


def error_of(spec: dict) -> str:  # type: ignore[type-arg]
    with pytest.raises(pydantic.ValidationError) as err:
        LLMService.from_object(service(spec))
    return validation_message(err.value)


def test_validation_message_names_the_field() -> None:
    message = error_of({"model": {"name": "llama3.1:8b"}, "resources": {"gpu": {"count": 9}}})
    assert message.startswith("spec.resources.gpu.count: ")


def test_validation_message_of_a_cel_rule_is_its_own_text() -> None:
    message = error_of({"model": {"name": "m"}, "replicas": 1, "autoscaling": {}})
    assert message.startswith("spec.replicas and spec.autoscaling are mutually exclusive")


def test_unknown_fields_point_at_kubectl_explain() -> None:
    message = error_of({"model": {"name": "m"}, "replica": 1})
    assert message.startswith("spec.replica: unknown field")
    assert "kubectl explain" in message


def test_missing_fields_and_more_problems_are_counted() -> None:
    message = error_of({"replica": 1, "stage": "qa"})
    assert "(and 2 more problems)" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("NVIDIA-L4", GPUChoice(None, "NVIDIA-L4")),
        ("NVIDIA-H100-80GB-HBM3:2", GPUChoice(2, "NVIDIA-H100-80GB-HBM3")),
        ("0", GPUChoice(0, None)),
        ("4", GPUChoice(4, None)),
    ],
)
def test_parse_gpu(value: str, expected: GPUChoice) -> None:
    assert parse_gpu(value) == expected


@pytest.mark.parametrize("value", ["", "NVIDIA-L4:", "NVIDIA-L4:x", ":2", "NVIDIA-L4:0", "a b"])
def test_parse_gpu_rejects(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_gpu(value)


def test_table_aligns_columns_and_continues_multiline_cells() -> None:
    out = format_table(["NAME", "MESSAGE"], [["a", "one\ntwo"], ["longer", "-"]])
    assert out.splitlines() == [
        "NAME     MESSAGE",
        "a        one",
        "         two",
        "longer   -",
    ]


def run_guarded(exc: BaseException, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    @guarded
    def command(args: argparse.Namespace) -> int:
        raise exc

    code = command(argparse.Namespace(command="demo"))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (CliError("bad input"), 2),
        (CliError("cluster down", 1), 1),
        (FileNotFoundError(2, "No such file", "x.yaml"), 2),
        (PermissionError(13, "Permission denied", "out.yaml"), 1),
        (RuntimeError("boom"), 1),
    ],
)
def test_guarded_turns_exceptions_into_one_line(
    exc: BaseException, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    got, err = run_guarded(exc, capsys)
    assert got == code
    assert err.startswith("llmstage demo: error: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_api_errors_are_one_line_with_the_servers_message(capsys: pytest.CaptureFixture[str]) -> None:
    from llmstage.kubeapi.errors import HttpError

    body = (
        b'{"kind":"Status","reason":"Forbidden",'
        b'"message":"llmservices is forbidden: User \\"x\\" cannot list"}'
    )
    code, text = run_guarded(HttpError(403, {}, body).api_error(), capsys)
    assert code == 1
    assert "403 Forbidden" in text and 'User "x" cannot list' in text


def test_a_non_status_error_body_is_shown_as_its_text(capsys: pytest.CaptureFixture[str]) -> None:
    """A proxy in front of the API server answers with its own page, not a Status object."""
    from llmstage.kubeapi.errors import HttpError

    code, text = run_guarded(HttpError(502, {}, b"upstream connect error").api_error(), capsys)
    assert code == 1
    assert "502" in text and "upstream connect error" in text


def test_an_unreachable_api_server_is_one_line_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    import httpx

    request = httpx.Request("GET", "https://10.0.0.1:6443/apis")
    code, text = run_guarded(httpx.ConnectError("[Errno 111] Connection refused", request=request), capsys)
    assert code == 1
    assert "cannot reach the API server https://10.0.0.1:6443: [Errno 111] Connection refused" in text
