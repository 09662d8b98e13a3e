"""Every project module a stage runs is one of its DVC deps, and imports never run back up.

The closure is computed statically (AST, imports inside functions included) from each stage's script, plus
the `custom_imports` of the config files the stage's deps list, so a change to any module a stage executes
reruns that stage.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]
PROJECT = ("models", "pipeline")


def _module_file(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Project module names imported anywhere in `path` (`from a import b` yields a.b when b is a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in PROJECT and _module_file(n) is not None}


def _closure(roots: set[str], start: list[Path]) -> set[Path]:
    seen: set[Path] = set()
    todo = list(start) + [_module_file(n) for n in roots]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__ too
                file = _module_file(".".join(parts[:i]))
                if file is not None:
                    todo.append(file)
    return seen


def _config_imports(dep: Path) -> set[str]:
    files = sorted(dep.rglob("*.py")) if dep.is_dir() else [dep] if dep.suffix == ".py" else []
    names: set[str] = set()
    for file in files:
        if "_base_" in file.parts:
            continue
        imports = (Config.fromfile(str(file)).get("custom_imports") or {}).get("imports", [])
        names.update(n for n in imports if n.split(".")[0] in PROJECT)
    return names


def _stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_stage_deps_cover_every_project_module_it_runs(stage: str) -> None:
    spec = _stages()[stage]
    spec = spec.get("do", spec)  # a foreach stage
    words = spec["cmd"].split()
    script = REPO / (words[2].replace(".", "/") + ".py" if words[1] == "-m" else words[1])  # python [-m] <script>
    deps = [str(d).replace("${item}", "x") for d in spec["deps"]]
    assert str(script.relative_to(REPO)) in deps, f"{stage}: its script {script} is not a dep"
    configs = set().union(*[_config_imports(REPO / d) for d in deps if d.startswith("configs/")])
    files = _closure(configs, [script])
    uncovered = sorted(str(f.relative_to(REPO)) for f in files
                       if f != REPO / "pipeline" / "__init__.py"
                       and not any(f == REPO / d or (REPO / d) in f.parents for d in deps))
    assert not uncovered, f"{stage} runs {uncovered} but dvc.yaml does not list them (or a folder above) as deps"


def test_the_pipeline_package_init_runs_no_code() -> None:
    body = ast.parse((REPO / "pipeline" / "__init__.py").read_text()).body
    assert all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


@pytest.mark.parametrize("package, forbidden", [("models", ("pipeline", "stages")), ("pipeline", ("stages",))])
def test_imports_never_run_back_up(package: str, forbidden: tuple[str, ...]) -> None:
    offenders = []
    for path in sorted((REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in forbidden]
    assert not offenders, offenders


def test_stage_libraries_import_only_core_and_themselves() -> None:
    """pipeline/<stage> imports pipeline.core and itself; the one exception is written here with its reason."""
    allowed = {("bench", "matting"),   # the bench times the matting metrics (bench's deps list pipeline/matting)
               ("verify", "matting")}  # verify checks the matting metrics against MATLAB (deps list it too)
    offenders = []
    for path in sorted((REPO / "pipeline").glob("*/**/*.py")):
        own = path.relative_to(REPO / "pipeline").parts[0]
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "pipeline" and len(parts) > 1 and parts[1] not in ("core", own) \
                    and (own, parts[1]) not in allowed:
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders, offenders
