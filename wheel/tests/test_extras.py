"""Dependencies per system: each console script's code imports only what the base dependencies plus its
system's extra provide, and the base holds only what every console script needs, so no job installs another
system's libraries (issue 12: the health monitor needs MLflow 3, the eval agent anthropic).

Read from the sources, not by importing them: every module of the script's subpackage (a whole subpackage,
so files loaded by path, like the health monitor's models-from-code file, count too) and every shared module
they import, at any depth, inside functions too (lazy imports run when the command does). Not counted:
imports under `if TYPE_CHECKING:` (never run) and imports guarded by `except ImportError` (optional by
construction: the code says what to install when they are missing), agent_jobs modules included. A module is
attributed to the distribution that installs its files (importlib.metadata), so namespace packages (`databricks`,
`opentelemetry`) resolve to the right distribution.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

WHEEL_ROOT = Path(__file__).resolve().parent.parent
SRC = WHEEL_ROOT / "src"
PYPROJECT = tomllib.loads((WHEEL_ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# Which extra each console script's job installs (`agent_jobs[<extra>]`); the program's job environments use
# the same names.
SCRIPT_EXTRAS = {
    "mlflow-eval": "eval-agent",
    "rlm-orchestrator": "rlm",
    "rlm-executor": "rlm",
    "health-monitor": "health-monitor",
    "serving-app": "serving",
    "deps-wheelhouse": "wheelhouse",
    "prompt-optimizer": "optimizer",
}
# Subpackages no console script runs, installed as an extra beside another one (the serving app's export).
LIBRARY_EXTRAS = {"agent_jobs.telemetry_otel": "telemetry"}
# Provided by the Databricks Runtime itself, never by pip: installing pyspark over a runtime's own breaks it.
RUNTIME_PROVIDED = {"pyspark"}


def requirements(extra: str | None) -> dict[str, Requirement]:
    """The base dependencies (extra None) or one extra's, by canonical distribution name."""
    project = PYPROJECT["project"]
    lines = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def modules() -> dict[str, Path]:
    """Every importable module of agent_jobs (dotted name -> file): a .py file whose directories up to the
    package are all regular packages (the wheelhouse's fixture projects are data, not modules)."""
    found: dict[str, Path] = {}
    for path in sorted((SRC / "agent_jobs").rglob("*.py")):
        rel = path.relative_to(SRC)
        if not all((SRC / Path(*rel.parts[:i]) / "__init__.py").is_file() for i in range(1, len(rel.parts))):
            continue
        parts = rel.with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(k, ast.Name) and k.id in ("ImportError", "ModuleNotFoundError") for k in kinds)


class _Imports(ast.NodeVisitor):
    """(dotted name, optional) for every import a module runs."""

    def __init__(self, module: str) -> None:
        self.package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        self.found: list[tuple[str, bool]] = []
        self.guarded = 0

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Try(self, node: ast.Try) -> None:
        guarded = any(_catches_import_error(h) for h in node.handlers)
        self.guarded += guarded
        for statement in node.body:
            self.visit(statement)
        self.guarded -= guarded
        rest: list[ast.AST] = [*node.handlers, *node.orelse, *node.finalbody]
        for child in rest:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [(alias.name, self.guarded > 0) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            anchor = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            base = ".".join([*anchor, *([base] if base else [])])
        # `from a.b import c`: c is a module or a name in a.b; the longest known prefix decides which.
        self.found += [(f"{base}.{alias.name}", self.guarded > 0) for alias in node.names]


@cache
def imports_of(module: str) -> tuple[tuple[str, bool], ...]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), str(MODULES[module]))
    visitor = _Imports(module)
    visitor.visit(tree)
    return tuple(visitor.found)


def closure(roots: list[str]) -> dict[str, str]:
    """Third-party imports (dotted name -> the agent_jobs module importing it) of `roots` and every agent_jobs
    module they import, with the packages each import runs on the way (a.b.c runs a and a.b first)."""
    seen: set[str] = set()
    todo = list(roots)
    third_party: dict[str, str] = {}
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in MODULES]
        for name, optional in imports_of(module):
            top = name.partition(".")[0]
            if top == "agent_jobs":
                if not optional:  # an ImportError-guarded module is optional too (the serving app's telemetry)
                    todo.append(next(p for p in _prefixes(name) if p in MODULES))
            elif top not in sys.stdlib_module_names and not optional and top not in RUNTIME_PROVIDED:
                third_party.setdefault(name, module)
    return third_party


@cache
def _top_level_distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


def _prefixes(name: str) -> list[str]:
    """a.b.c, a.b, a: the longest first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


@cache
def _dist_modules(dist: str) -> frozenset[str]:
    """The dotted module and package names a distribution installs."""
    names: set[str] = set()
    for file in metadata.distribution(dist).files or []:
        if file.suffix == ".py":
            parts = file.with_suffix("").parts
            names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(n.removesuffix(".__init__") for n in names)


def providers(name: str) -> set[str]:
    """The distributions (canonical names) installing the module `name` (its longest installed prefix)."""
    candidates = _top_level_distributions().get(name.partition(".")[0], [])
    if len(candidates) == 1:
        return {canonicalize_name(candidates[0])}
    for prefix in _prefixes(name):
        owners: set[str] = {canonicalize_name(d) for d in candidates if prefix in _dist_modules(d)}
        if owners:
            return owners
    return set()


def needed(roots: list[str]) -> dict[str, list[str]]:
    """Distribution -> the imports (`module: name`) that need it; '?<name>' when no installed one provides it."""
    found: dict[str, list[str]] = {}
    for name, module in sorted(closure(roots).items()):
        for dist in providers(name) or {f"?{name}"}:
            found.setdefault(dist, []).append(f"{module}: {name}")
    return found


def subpackage_modules(package: str) -> list[str]:
    return [m for m in MODULES if m == package or m.startswith(package + ".")]


def script_package(script: str) -> str:
    """agent_jobs.<system> of a console script (its entry point's subpackage)."""
    return ".".join(PYPROJECT["project"]["scripts"][script].partition(":")[0].split(".")[:2])


def systems() -> Iterator[tuple[str, str, str]]:
    """(label, subpackage, extra) for every console script and every library subpackage."""
    for script, extra in SCRIPT_EXTRAS.items():
        yield script, script_package(script), extra
    for package, extra in LIBRARY_EXTRAS.items():
        yield package, package, extra


@pytest.mark.parametrize(("label", "package", "extra"), list(systems()), ids=lambda v: v)
def test_each_system_imports_only_its_extra_and_the_base(label: str, package: str, extra: str) -> None:
    """What a job installs (`agent_jobs[<extra>]`) is enough for every import its code runs: base plus its
    extra, nothing another system's extra brings."""
    provided = {*requirements(None), *requirements(extra)}
    missing = {dist: where for dist, where in needed(subpackage_modules(package)).items() if dist not in provided}
    assert not missing, f"{label} imports what neither the base nor [{extra}] declares: {missing}"


@pytest.mark.parametrize(("label", "package", "extra"), list(systems()), ids=lambda v: v)
def test_each_extra_holds_only_what_its_system_imports(label: str, package: str, extra: str) -> None:
    """An extra forces nothing on its jobs that their code does not import (pins of a base dependency, like
    the serving app's newer databricks-sdk, are allowed)."""
    used = needed(subpackage_modules(package))
    stray = [d for d in requirements(extra) if d not in used and d not in requirements(None)]
    assert not stray, f"[{extra}] declares {stray}, which {label}'s code never imports"


def test_the_base_is_what_every_console_script_needs() -> None:
    """Base dependencies are installed by every job: each must be imported by every console script's code."""
    base = requirements(None)
    for script in SCRIPT_EXTRAS:
        unused = set(base) - set(needed(subpackage_modules(script_package(script))))
        assert not unused, f"base dependencies {sorted(unused)} are not needed by {script}"


def test_every_script_extra_and_module_is_accounted_for() -> None:
    """A new console script, extra or subpackage must say which extra it needs, so this check covers it."""
    assert set(PYPROJECT["project"]["scripts"]) == set(SCRIPT_EXTRAS)
    assert set(PYPROJECT["project"]["optional-dependencies"]) == {*SCRIPT_EXTRAS.values(), *LIBRARY_EXTRAS.values()}
    covered = {m for _, package, _ in systems() for m in subpackage_modules(package)}
    shared = {m for m in MODULES if m.count(".") == 1 and MODULES[m].name != "__init__.py"} | {"agent_jobs"}
    subpackages = {m for m in MODULES if m.count(".") == 1 and MODULES[m].name == "__init__.py"}
    assert {p for p in subpackages if not any(p == pkg for _, pkg, _ in systems())} == set()
    assert set(MODULES) - covered - shared == set()


def test_the_health_monitor_gets_mlflow_3_and_only_the_eval_agent_gets_anthropic() -> None:
    """The issue's two examples: mlflow.genai needs MLflow 3, which the eval agent's jobs must not be forced to
    take; anthropic is the eval agent's alone."""
    mlflow = requirements("health-monitor")["mlflow-skinny"].specifier
    assert mlflow.contains("3.0.0") and not mlflow.contains("2.22.0")
    assert requirements("eval-agent")["mlflow-skinny"].specifier.contains("2.14.0")
    assert [e for e in PYPROJECT["project"]["optional-dependencies"] if "anthropic" in requirements(e)] == [
        "eval-agent"
    ]


def test_the_import_reader_sees_lazy_guarded_and_type_only_imports() -> None:
    """The reader itself: a lazy import counts, an ImportError-guarded one (serving's optional pgserver) and a
    TYPE_CHECKING one do not, and a namespace package resolves to the distribution that installs it."""
    serving = closure(subpackage_modules("agent_jobs.serving"))
    assert "uvicorn" in serving and "pgserver" not in serving
    assert not [name for name in serving if name.startswith("opentelemetry.sdk")]  # the telemetry extra, guarded
    telemetry = [name for name, _ in imports_of("agent_jobs.telemetry_otel")]  # pipeline lazily, settings for types
    assert "agent_jobs.telemetry_otel.pipeline.install" in telemetry
    assert not [name for name in telemetry if name.startswith("agent_jobs.telemetry_otel.settings")]
    assert providers("opentelemetry.sdk.trace") == {"opentelemetry-sdk"}
    assert providers("databricks.sdk.errors") == {"databricks-sdk"}
    assert "mlflow" in closure(["agent_jobs.health_monitor.model"])  # imported inside a function
