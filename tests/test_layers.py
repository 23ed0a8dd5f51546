"""The package's layers import downward only (docs/architecture.md), read from the source.

Every ``import`` of the package in every module of ``advpath_jax`` counts, at module level
and inside functions alike (also ``importlib.import_module("advpath_jax...")`` with a
literal name), so moving an upward import into a function does not hide it.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = "advpath_jax"
ROOT = pathlib.Path(__file__).resolve().parents[1] / PACKAGE

# The layers, lowest first (docs/architecture.md). A module imports from its own level or below.
LEVELS = {
    "errors": 0, "io_utils": 0, "validation": 0, "parallel": 0, "config_utils": 0, "distributed": 0,
    "compile_cache": 0,
    "models": 1, "data": 1,
    "attribution": 2, "metrics": 2,
    PACKAGE: 2,  # ``import advpath_jax as ap`` (``ap.score_fn``): the names its __init__ takes from attribution
    "generators": 3,
    "store": 4,
    "explain": 5,
    "training": 6,
    "pipeline": 7, "bench": 7, "view": 7, "torch_twin": 7, "cli": 7,
}
# The rules of the refactor (issue 12), spelled out: importer part -> parts it never imports.
NEVER = {
    **{low: {"training", "pipeline", "explain", "bench", "view", "generators", "store"}
       for low in ("models", "attribution", "metrics", "data")},
    "explain": {"training"},
    # the trainers measure their models with the inference below them (generators/, store/), and
    # share helpers (blur, image checks) through the lower layers, not through the explainers
    "training": {"explain"},
    "generators": {"training", "pipeline", "explain"},
    "store": {"training", "pipeline", "explain"},
}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str:
    """``advpath_jax.training.mgen`` -> ``training``; ``advpath_jax`` -> ``advpath_jax``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _is_module(dotted: str) -> bool:
    path = ROOT.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path: pathlib.Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every package module ``path`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = [f"{target}.{a.name}" for a in node.names if _is_module(f"{target}.{a.name}")]
            if target != PACKAGE or len(submodules) < len(node.names):
                found.append((node.lineno, target))  # (``from advpath_jax import data``: data only)
            found += [(node.lineno, m) for m in submodules]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return [(line, m) for line, m in found if m == PACKAGE or m.startswith(PACKAGE + ".")]


def package_files() -> list[pathlib.Path]:
    return sorted(ROOT.rglob("*.py"))


def upward_imports(rule) -> list[str]:
    """``"file:line: importer -> imported"`` for every import ``rule(importer, imported)`` rejects."""
    bad = []
    for path in package_files():
        importer = part_of(module_name(path))
        for line, target in imported_modules(path):
            imported = part_of(target)
            if importer != imported and not rule(importer, imported):
                bad.append(f"{path.relative_to(ROOT.parent)}:{line}: {importer} -> {target}")
    return bad


def test_the_scanner_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    pkg = tmp_path / PACKAGE
    (pkg / "explain").mkdir(parents=True)
    (pkg / "training").mkdir()
    for f in (pkg / "__init__.py", pkg / "explain" / "__init__.py", pkg / "training" / "__init__.py",
              pkg / "training" / "losses.py"):
        f.write_text("")
    probe = pkg / "explain" / "probe.py"
    probe.write_text("import os\n\n\ndef f():\n    from advpath_jax.training import losses\n"
                     "    from ..training.losses import x\n    import importlib\n"
                     "    importlib.import_module('advpath_jax.training')\n")
    monkeypatch.setitem(globals(), "ROOT", pkg)
    assert imported_modules(probe) == [(5, "advpath_jax.training"), (5, "advpath_jax.training.losses"),
                                       (6, "advpath_jax.training.losses"), (8, "advpath_jax.training")]


def test_every_part_of_the_package_has_a_level():
    parts = {part_of(module_name(p)) for p in package_files()} - {PACKAGE}
    assert parts <= set(LEVELS), f"give these a level in LEVELS and docs/architecture.md: {parts - set(LEVELS)}"


@pytest.mark.parametrize("importer", sorted(NEVER))
def test_the_issues_rules(importer):
    bad = [b for b in upward_imports(lambda a, b: b not in NEVER.get(a, ())) if f": {importer} ->" in b]
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_every_import_goes_to_the_same_level_or_below():
    bad = upward_imports(lambda a, b: LEVELS.get(b, 99) <= LEVELS.get(a, -1))
    assert not bad, "upward imports:\n" + "\n".join(bad)
