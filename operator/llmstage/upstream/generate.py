"""Write the pinned fact files in llmstage/data/upstream/ from the released upstream artifacts.

    python -m llmstage.upstream.generate vllm vllm-0.12.0-cp38-abi3-manylinux_2_31_x86_64.whl
    python -m llmstage.upstream.generate ollama $(go env GOMODCACHE)/github.com/ollama/ollama@v0.12.10

Get the inputs with the registries' own clients:

    pip download --no-deps vllm==0.12.0
    GOFLAGS=-mod=mod go mod download github.com/ollama/ollama@v0.12.10

vLLM: the wheel's Python source is read, never imported (importing it needs torch and CUDA).
`vllm serve` builds its parser in vllm/entrypoints/openai/cli_args.py (make_arg_parser), which
adds FrontendArgs and AsyncEngineArgs (vllm/engine/arg_utils.py). Most flags come from config
dataclasses through get_kwargs(): a field's type decides whether the flag takes a value, is a
boolean pair (--x / --no-x) or has choices (a Literal). This module follows those calls and
evaluates the type annotations the way arg_utils._compute_kwargs does at runtime (an
`if TYPE_CHECKING:` branch counts as not taken). Environment variables are the keys of
vllm/envs.py's `environment_variables`.

Ollama: the Go module source. Environment variables are every name envconfig/config.go reads
(Var, String, Bool, Uint, ...) plus os.Getenv/LookupEnv calls of the server and CLI packages;
commands and their flags come from cmd/cmd.go's cobra definitions; the image's entrypoint,
command and environment from the last stage of the Dockerfile.

Bumping an image tag means running this for the new release and reviewing the diff of the
checked-in file. Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data" / "upstream"

# ---------------------------------------------------------------- vLLM: types of config fields


@dataclass(frozen=True)
class Lit:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Prim:
    name: str  # bool int float str NoneType dict bytes


@dataclass(frozen=True)
class Coll:
    kind: str  # list tuple set
    args: tuple[Any, ...]


@dataclass(frozen=True)
class DataclassType:
    name: str


@dataclass(frozen=True)
class Other:
    """A non-builtin type (torch.dtype, an Enum, typing.Any): argparse gets type=str for it."""

    name: str


@dataclass(frozen=True)
class TypingForm:
    name: str  # Literal Optional Union Annotated ... as imported from typing


Type = Lit | Prim | Coll | DataclassType | Other | TypingForm
UNION = "union"

_BUILTINS = {
    "bool", "int", "float", "str", "dict", "bytes", "list", "tuple", "set", "frozenset", "type", "object",
}  # fmt: skip
_TYPING_MODULES = {"typing", "typing_extensions", "collections.abc"}
# pydantic's SkipValidation[X] is Annotated[X, SkipValidation()] at runtime.
_ANNOTATED = {"Annotated", "SkipValidation"}


@dataclass
class Binding:
    kind: str  # expr | import | class | module
    node: Any = None
    module: str = ""
    attr: str | None = None


@dataclass
class Module:
    name: str
    tree: ast.Module
    bindings: dict[str, Binding] = field(default_factory=dict)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Top-level statements as they run: `if TYPE_CHECKING:` bodies skipped, their else taken."""
    for stmt in body:
        if isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
            yield from _runtime_statements(stmt.orelse)
        elif isinstance(stmt, ast.If | ast.Try):
            yield from _runtime_statements(stmt.body)
            yield from _runtime_statements(stmt.orelse)
        else:
            yield stmt


class Wheel:
    """Python modules of a wheel, parsed on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip = zipfile.ZipFile(path)
        self.names = set(self.zip.namelist())
        self.modules: dict[str, Module | None] = {}

    def source(self, member: str) -> str:
        return self.zip.read(member).decode()

    def module(self, name: str) -> Module | None:
        if name in self.modules:
            return self.modules[name]
        base = name.replace(".", "/")
        member = next((m for m in (f"{base}.py", f"{base}/__init__.py") if m in self.names), None)
        if member is None:
            self.modules[name] = None
            return None
        mod = Module(name, ast.parse(self.source(member)))
        package = name if member.endswith("__init__.py") else name.rpartition(".")[0]
        for stmt in _runtime_statements(mod.tree.body):
            if isinstance(stmt, ast.ImportFrom):
                source = stmt.module or ""
                if stmt.level:
                    parts = package.split(".")
                    parent = ".".join(parts[: len(parts) - stmt.level + 1])
                    source = f"{parent}.{source}" if source else parent
                for alias in stmt.names:
                    mod.bindings[alias.asname or alias.name] = Binding(
                        "import", module=source, attr=alias.name
                    )
            elif isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.asname:
                        mod.bindings[alias.asname] = Binding("module", module=alias.name)
                    else:
                        top = alias.name.split(".")[0]
                        mod.bindings[top] = Binding("module", module=top)
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        mod.bindings[target.id] = Binding("expr", stmt.value, name)
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
                mod.bindings[stmt.target.id] = Binding("expr", stmt.value, name)
            elif isinstance(stmt, ast.ClassDef):
                mod.bindings[stmt.name] = Binding("class", stmt, name)
        self.modules[name] = mod
        return mod

    # -- names and types

    def lookup(self, module: str, name: str, depth: int = 0) -> Binding | None:
        """What `name` is bound to in `module`, following imports to where it is defined."""
        if depth > 20:
            raise ValueError(f"import cycle resolving {module}.{name}")
        mod = self.module(module)
        if mod is None:
            return Binding("external", module=module, attr=name)
        binding = mod.bindings.get(name)
        if binding is None:
            sub = self.module(f"{module}.{name}")
            return Binding("module", module=f"{module}.{name}") if sub else None
        if binding.kind == "import":
            assert binding.attr is not None
            if binding.module in _TYPING_MODULES or self.module(binding.module) is None:
                return Binding("external", module=binding.module, attr=binding.attr)
            return self.lookup(binding.module, binding.attr, depth + 1)
        return binding

    def eval_type(self, node: ast.expr, module: str) -> Any:
        """A Type, or (UNION, members) for a union."""
        if isinstance(node, ast.Constant):
            if node.value is None:
                return Prim("NoneType")
            if isinstance(node.value, str):  # a forward reference
                return self.eval_type(ast.parse(node.value, mode="eval").body, module)
            raise ValueError(f"unexpected constant {node.value!r} in a type in {module}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return (UNION, (self._one(node.left, module), self._one(node.right, module)))
        if isinstance(node, ast.Name | ast.Attribute):
            return self.resolve(node, module)
        if isinstance(node, ast.Subscript):
            base = self.resolve(node.value, module)
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if isinstance(base, TypingForm):
                if base.name == "Literal":
                    return Lit(tuple(self._literal_values(items, module)))
                if base.name == "Optional":
                    return (UNION, (self._one(items[0], module), Prim("NoneType")))
                if base.name == "Union":
                    return (UNION, tuple(self._one(i, module) for i in items))
                if base.name in _ANNOTATED:
                    return self.eval_type(items[0], module)
                if base.name in ("List", "Sequence", "MutableSequence"):
                    return Coll("list", tuple(self._one(i, module) for i in items))
                if base.name in ("Tuple",):
                    return Coll("tuple", tuple(self._elem(i, module) for i in items))
                if base.name in ("Set", "FrozenSet", "AbstractSet"):
                    return Coll("set", tuple(self._one(i, module) for i in items))
                if base.name in ("Dict", "Mapping", "MutableMapping"):
                    return Prim("dict")
                return Other(f"typing.{base.name}[...]")
            if isinstance(base, Prim) and base.name in ("list", "tuple", "set", "frozenset"):
                kind = "set" if base.name == "frozenset" else base.name
                return Coll(kind, tuple(self._elem(i, module) for i in items))
            return base  # dict[str, int] -> dict; a generic class -> that class
        raise ValueError(f"unsupported type expression {ast.dump(node)} in {module}")

    def _elem(self, node: ast.expr, module: str) -> Any:
        if isinstance(node, ast.Constant) and node.value is Ellipsis:
            return Ellipsis
        return self._one(node, module)

    def _one(self, node: ast.expr, module: str) -> Any:
        return self.eval_type(node, module)

    def _literal_values(self, items: list[ast.expr], module: str) -> Iterator[Any]:
        for item in items:
            if isinstance(item, ast.Constant):
                yield item.value
            elif isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.USub):
                assert isinstance(item.operand, ast.Constant) and isinstance(item.operand.value, int | float)
                yield -item.operand.value
            else:  # Literal[A, B] with A and B Literal aliases flattens, as in typing
                nested = self.eval_type(item, module)
                if not isinstance(nested, Lit):
                    raise ValueError(f"Literal of a non-literal {ast.dump(item)} in {module}")
                yield from nested.values

    def resolve(self, node: ast.expr, module: str) -> Any:
        if isinstance(node, ast.Name):
            if node.id in _BUILTINS:
                return Prim(node.id)
            if node.id == "None":
                return Prim("NoneType")
            binding = self.lookup(module, node.id)
        elif isinstance(node, ast.Attribute):
            owner = self.resolve_module(node.value, module)
            if owner is None:
                return Other(ast.unparse(node))
            binding = self.lookup(owner, node.attr)
        else:
            return self.eval_type(node, module)
        if binding is None:
            raise ValueError(f"cannot resolve {ast.unparse(node)} in {module}")
        return self._binding_type(binding, ast.unparse(node))

    def resolve_module(self, node: ast.expr, module: str) -> str | None:
        """The module an attribute's owner names (`torch` in torch.dtype), None when it is not one."""
        if isinstance(node, ast.Name):
            binding = self.lookup(module, node.id)
        elif isinstance(node, ast.Attribute):
            owner = self.resolve_module(node.value, module)
            binding = self.lookup(owner, node.attr) if owner else None
        else:
            return None
        if binding is not None and binding.kind == "module":
            return binding.module
        if binding is not None and binding.kind == "external":
            return f"{binding.module}.{binding.attr}"
        return None

    def _binding_type(self, binding: Binding, text: str) -> Any:
        if binding.kind == "external":
            if binding.module in _TYPING_MODULES:
                if binding.attr == "Any":
                    return Other("typing.Any")
                return TypingForm(binding.attr or "")
            if binding.attr in _ANNOTATED:
                return TypingForm(binding.attr or "")
            return Other(f"{binding.module}.{binding.attr}")
        if binding.kind == "class":
            node: ast.ClassDef = binding.node
            decorators = {ast.unparse(d).split("(")[0].rpartition(".")[2] for d in node.decorator_list}
            return DataclassType(node.name) if "dataclass" in decorators else Other(node.name)
        if binding.kind == "expr":
            return self.eval_type(binding.node, binding.module)
        return Other(text)

    # -- dataclass fields

    def dataclass_fields(self, module: str, name: str) -> dict[str, Any]:
        binding = self.lookup(module, name)
        if binding is None or binding.kind != "class":
            raise ValueError(f"{module}.{name} is not a class of the wheel")
        node: ast.ClassDef = binding.node
        out: dict[str, Any] = {}
        for base in node.bases:  # dataclass inheritance: base fields first
            if isinstance(base, ast.Name):
                base_binding = self.lookup(binding.module, base.id)
                if base_binding is not None and base_binding.kind == "class":
                    out.update(self.dataclass_fields(base_binding.module, base.id))
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                text = ast.unparse(stmt.annotation)
                if text.startswith(("ClassVar", "InitVar", "typing.ClassVar", "dataclasses.InitVar")):
                    continue
                out[stmt.target.id] = self.eval_type(stmt.annotation, binding.module)
        return out


def _hints(t: Any) -> list[Any]:
    """arg_utils.get_type_hints: Annotated unwrapped (done in eval_type), unions flattened."""
    if isinstance(t, tuple) and t[0] == UNION:
        return [h for member in t[1] for h in _hints(member)]
    return [t]


def _is_builtin(t: Any) -> bool:
    return isinstance(t, Prim | Coll)


def field_flag(t: Any) -> dict[str, Any]:
    """What arg_utils._compute_kwargs makes of a field of type `t`, for the checks we run."""
    hints = _hints(t)
    has = {h.name for h in hints if isinstance(h, Prim)}
    optional = "NoneType" in has
    if any(isinstance(h, DataclassType) for h in hints):
        return {"value": True, "json": True}
    if "bool" in has:
        return {"value": False, "negatable": True}
    literal = next((h for h in hints if isinstance(h, Lit)), None)
    if literal is not None:
        if "str" in has:
            return {"value": True}  # metavar, not choices
        choices = sorted(literal.values)
        return {"value": True, "choices": [str(c) for c in choices] + (["None"] if optional else [])}
    coll = next((h for h in hints if isinstance(h, Coll)), None)
    if coll is not None:
        elem = next((a for a in coll.args if a is not Ellipsis), None)
        out: dict[str, Any] = {"value": True, "nargs": True}
        if isinstance(elem, Lit):  # a sequence of literals
            out["choices"] = [str(c) for c in sorted(elem.values)] + (["None"] if optional else [])
        return out
    if "dict" in has:
        return {"value": True, "json": True}
    if has & {"int", "float", "str", "bytes"} or any(not _is_builtin(h) for h in hints):
        return {"value": True}
    raise ValueError(f"unsupported field type {t!r}")


# ---------------------------------------------------------------- vLLM: the parser `vllm serve` builds

# (module, function) in the order vllm/entrypoints/openai/cli_args.py:make_arg_parser calls them.
VLLM_PARSER_FUNCTIONS = (
    ("vllm.entrypoints.openai.cli_args", "make_arg_parser"),
    ("vllm.entrypoints.openai.cli_args", "FrontendArgs.add_cli_args"),
    ("vllm.engine.arg_utils", "AsyncEngineArgs.add_cli_args"),
    ("vllm.engine.arg_utils", "EngineArgs.add_cli_args"),
)


def _function(tree: ast.Module, qualname: str) -> ast.FunctionDef:
    scope: list[ast.stmt] = tree.body
    *owners, name = qualname.split(".")
    for owner in owners:
        scope = next(s for s in scope if isinstance(s, ast.ClassDef) and s.name == owner).body
    return next(s for s in scope if isinstance(s, ast.FunctionDef) and s.name == name)


class ParserWalker:
    """Follows add_argument calls through one function, with get_kwargs() results in scope."""

    def __init__(self, wheel: Wheel, module: str) -> None:
        self.wheel = wheel
        self.module = module
        self.kwargs: dict[str, dict[str, dict[str, Any]]] = {}
        self.loops: dict[str, str] = {}  # loop variable -> kwargs variable it iterates
        self.flags: dict[str, dict[str, Any]] = {}
        self.positionals: list[str] = []

    def walk(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.statement(stmt)

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call):
            call = stmt.value
            if isinstance(call.func, ast.Name) and call.func.id == "get_kwargs":
                target = stmt.targets[0]
                assert isinstance(target, ast.Name) and isinstance(call.args[0], ast.Name)
                cls = call.args[0].id
                binding = self.wheel.lookup(self.module, cls)
                assert binding is not None
                fields = self.wheel.dataclass_fields(binding.module, cls)
                self.kwargs[target.id] = {name: field_flag(t) for name, t in fields.items()}
                return
        if isinstance(stmt, ast.Assign | ast.AugAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                self._override(target)
        if isinstance(stmt, ast.For):
            if (
                isinstance(stmt.iter, ast.Call)
                and isinstance(stmt.iter.func, ast.Attribute)
                and stmt.iter.func.attr == "items"
                and isinstance(stmt.iter.func.value, ast.Name)
                and isinstance(stmt.target, ast.Tuple)
                and isinstance(stmt.target.elts[0], ast.Name)
            ):
                self.loops[stmt.target.elts[0].id] = stmt.iter.func.value.id
            self.walk(stmt.body)
            return
        if isinstance(stmt, ast.If | ast.With | ast.Try):
            self.walk(stmt.body)
            self.walk(getattr(stmt, "orelse", []))
            return
        for node in ast.walk(stmt):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"
            ):
                self.add_argument(node)

    def _override(self, target: ast.expr) -> None:
        """X["field"]["choices"] = ... computed at runtime: the check cannot know the choices."""
        if (
            isinstance(target, ast.Subscript)
            and isinstance(target.slice, ast.Constant)
            and target.slice.value == "choices"
            and isinstance(target.value, ast.Subscript)
            and isinstance(target.value.value, ast.Name)
            and isinstance(target.value.slice, ast.Constant)
        ):
            spec = self.kwargs.get(target.value.value.id, {}).get(str(target.value.slice.value))
            if spec is not None:
                spec.pop("choices", None)
                spec["choices_computed"] = True

    def _spec_from(self, node: ast.expr) -> dict[str, Any]:
        """**X["field"] or **{**X["field"], ...}."""
        if isinstance(node, ast.Dict):
            out: dict[str, Any] = {}
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    out.update(self._spec_from(value))
            return out
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            assert isinstance(node.slice, ast.Constant)
            return dict(self.kwargs[node.value.id][str(node.slice.value)])
        if isinstance(node, ast.Name) and node.id in self.loops.values():
            return {}
        raise ValueError(f"unsupported ** argument {ast.unparse(node)} in {self.module}")

    def add_argument(self, call: ast.Call) -> None:
        names: list[str] = []
        loop_over: str | None = None
        for arg in call.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.append(arg.value)
            elif isinstance(arg, ast.JoinedStr):
                loop_var = next(
                    (n.id for n in ast.walk(arg) if isinstance(n, ast.Name) and n.id in self.loops), None
                )
                if loop_var is None:
                    raise ValueError(f"unsupported f-string flag {ast.unparse(arg)} in {self.module}")
                loop_over = self.loops[loop_var]
            else:
                raise ValueError(f"unsupported flag name {ast.unparse(arg)} in {self.module}")
        spec: dict[str, Any] = {"value": True}
        for kw in call.keywords:
            if kw.arg is None:
                if loop_over is None:
                    spec.update(self._spec_from(kw.value))
            elif kw.arg == "action":
                action = ast.unparse(kw.value)
                if action in ("'store_true'", "'store_false'", "'store_const'", "'count'"):
                    spec = {**spec, "value": False}
                elif action.endswith("BooleanOptionalAction"):
                    spec = {**spec, "value": False, "negatable": True}
            elif kw.arg == "choices":
                spec["choices"] = [str(c) for c in ast.literal_eval(kw.value)]
            elif kw.arg == "nargs" and ast.unparse(kw.value) == "'?'":
                spec["optional_value"] = True
            elif kw.arg == "deprecated" and ast.unparse(kw.value) == "True":
                spec["deprecated"] = True
        if loop_over is not None:
            for key, field_spec in self.kwargs[loop_over].items():
                self._add([f"--{key.replace('_', '-')}"], field_spec)
            return
        if names and not names[0].startswith("-"):
            self.positionals.extend(names)
            return
        self._add(names, spec)

    def _add(self, names: list[str], spec: dict[str, Any]) -> None:
        long_names = [n for n in names if n.startswith("--")]
        canonical = long_names[0] if long_names else names[0]
        entry = {k: v for k, v in spec.items() if v not in (None, False) or k == "value"}
        if len(names) > 1:
            entry["aliases"] = [n for n in names if n != canonical]
        self.flags[canonical] = entry


def vllm_facts(wheel_path: Path) -> dict[str, Any]:
    wheel = Wheel(wheel_path)
    version_source = wheel.source("vllm/_version.py")
    version = re.search(r"__version__ = version = '([^']+)'", version_source)
    commit = re.search(r"__commit_id__ = commit_id = '([^']+)'", version_source)
    assert version, "vllm/_version.py without __version__"
    flags: dict[str, dict[str, Any]] = {}
    positionals: list[str] = []
    for module, function in VLLM_PARSER_FUNCTIONS:
        mod = wheel.module(module)
        assert mod is not None, module
        walker = ParserWalker(wheel, module)
        walker.walk(_function(mod.tree, function).body)
        flags.update(walker.flags)
        positionals.extend(walker.positionals)
    # --quantization has no argparse choices at runtime (its type is QuantizationMethods only
    # under TYPE_CHECKING); ModelConfig._verify_quantization then rejects a name outside
    # QUANTIZATION_METHODS = get_args(QuantizationMethods), before anything loads.
    quant = wheel.module("vllm.model_executor.layers.quantization")
    assert quant is not None
    methods = wheel.eval_type(quant.bindings["QuantizationMethods"].node, quant.name)
    assert isinstance(methods, Lit)
    flags["--quantization"]["accepted"] = sorted(str(v) for v in methods.values)
    flags["--quantization"]["accepted_source"] = (
        "vllm/model_executor/layers/quantization/__init__.py QuantizationMethods, checked by "
        "vllm/config/model.py ModelConfig._verify_quantization"
    )
    # `vllm serve --model X` still parses, but FlexibleArgumentParser.parse_args warns that the
    # option goes away: the model belongs in the positional model_tag.
    removal = re.search(
        r"The `--model` option will be removed in (v\d+(?:\.\d+)*)",
        wheel.source("vllm/utils/argparse_utils.py"),
    )
    if removal:
        flags["--model"]["deprecated"] = True
        flags["--model"]["note"] = (
            f"vllm/utils/argparse_utils.py: with `vllm serve` the model is positional; "
            f"--model will be removed in {removal.group(1)}"
        )
    envs = wheel.module("vllm.envs")
    assert envs is not None
    table = envs.bindings["environment_variables"].node
    assert isinstance(table, ast.Dict)
    env = sorted(str(k.value) for k in table.keys if isinstance(k, ast.Constant))
    digest = hashlib.sha256(wheel_path.read_bytes()).hexdigest()
    return {
        "release": f"vLLM {version.group(1)}",
        "source": {
            "artifact": wheel_path.name,
            "sha256": digest,
            "commit": commit.group(1) if commit else None,
            "read": [f"{m.replace('.', '/')}.py {f}" for m, f in VLLM_PARSER_FUNCTIONS]
            + ["vllm/envs.py environment_variables"],
        },
        "generator": "python -m llmstage.upstream.generate vllm WHEEL",
        "serve": {
            "usage": "vllm serve [model_tag] [options]",
            "positionals": positionals,
            "flags": dict(sorted(flags.items())),
        },
        "env": env,
    }


# ---------------------------------------------------------------- Ollama

_ENVCONFIG_CALL = re.compile(
    r'\b(?:Var|String|Bool|BoolWithDefault|Uint|Uint64|os\.Getenv|os\.LookupEnv)\("([A-Za-z_][A-Za-z0-9_]*)"'
)
_GO_GETENV = re.compile(r'\bos\.(?:Getenv|LookupEnv)\("([A-Za-z_][A-Za-z0-9_]*)"\)')
# Packages of the `ollama` binary whose environment reads count (not the desktop app, tests, docs).
_OLLAMA_PACKAGES = ("api", "cmd", "discover", "envconfig", "llm", "ml", "runner", "server", "auth", "fs")
_COBRA = re.compile(r'(\w+)\s*:?=\s*&cobra\.Command\{\s*Use:\s*"([^"]+)"')
_COBRA_FLAG = re.compile(r'(\w+)\.(?:Persistent)?Flags\(\)\.\w+?P?\("([\w-]+)"')
_CAPABILITY = re.compile(r'Capability\w*\s*=\s*Capability\("(\w+)"\)')


def _go_files(root: Path) -> Iterator[Path]:
    for package in _OLLAMA_PACKAGES:
        for path in sorted((root / package).rglob("*.go")):
            name = path.name
            if name.endswith("_test.go") or re.search(r"_(windows|darwin)(_\w+)?\.go$", name):
                continue
            yield path


def _dockerfile_final_stage(text: str) -> dict[str, Any]:
    """ENTRYPOINT, CMD, ENV and base of the stage `docker build` builds by default (the last)."""
    stages: list[list[str]] = []
    logical = re.sub(r"\\\n", " ", text).splitlines()
    for line in logical:
        stripped = line.strip()
        if stripped.upper().startswith("FROM "):
            stages.append([stripped])
        elif stages and stripped and not stripped.startswith("#"):
            stages[-1].append(stripped)
    last = stages[-1]
    out: dict[str, Any] = {"from": last[0].split()[1], "env": {}}
    for line in last[1:]:
        keyword, _, rest = line.partition(" ")
        if keyword == "ENV":
            key, _, value = rest.partition("=")
            out["env"][key.strip()] = value.strip()
        elif keyword in ("ENTRYPOINT", "CMD"):
            out[keyword.lower()] = json.loads(rest)
        elif keyword == "USER":
            out["user"] = rest.strip()
    out.setdefault("user", None)  # no USER: the image runs as root
    return out


def ollama_facts(root: Path) -> dict[str, Any]:
    version = re.search(r"@v([0-9][^/]*)$", str(root))
    env: set[str] = set(_ENVCONFIG_CALL.findall((root / "envconfig" / "config.go").read_text()))
    for path in _go_files(root):
        env.update(_GO_GETENV.findall(path.read_text()))
    cmd = (root / "cmd" / "cmd.go").read_text()
    commands: dict[str, dict[str, Any]] = {}
    variables: dict[str, str] = {}
    for var, use in _COBRA.findall(cmd):
        name = use.split()[0]
        variables[var] = name
        commands[name] = {"usage": use, "flags": []}
    for var, flag in _COBRA_FLAG.findall(cmd):
        if var in variables:
            commands[variables[var]]["flags"].append(f"--{flag}")
    for spec in commands.values():
        spec["flags"] = sorted(set(spec["flags"]))
    capabilities = _CAPABILITY.findall((root / "types" / "model" / "capability.go").read_text())
    return {
        "release": f"Ollama {version.group(1) if version else '?'}",
        "source": {
            "artifact": f"github.com/ollama/ollama@v{version.group(1) if version else '?'} (Go module proxy)",
            "read": [
                "envconfig/config.go",
                "os.Getenv/os.LookupEnv in " + ", ".join(f"{p}/" for p in _OLLAMA_PACKAGES),
                "cmd/cmd.go (cobra commands and flags)",
                "types/model/capability.go",
                "Dockerfile (last stage)",
            ],
        },
        "generator": "python -m llmstage.upstream.generate ollama MODULE_DIR",
        "env": sorted(env),
        "commands": dict(sorted(commands.items())),
        "capabilities": capabilities,
        "image": _dockerfile_final_stage((root / "Dockerfile").read_text()),
    }


# ---------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("runtime", choices=["vllm", "ollama"])
    parser.add_argument("source", type=Path, help="the vLLM wheel, or the ollama module directory")
    parser.add_argument("--out", type=Path, default=DATA, help="directory of the fact files")
    args = parser.parse_args(argv)
    facts = vllm_facts(args.source) if args.runtime == "vllm" else ollama_facts(args.source)
    version = facts["release"].split()[-1]
    path = args.out / f"{args.runtime}-{version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(facts, indent=1, sort_keys=False) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
