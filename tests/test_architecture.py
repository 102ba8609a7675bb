"""The package's architecture: layers (import-linter), no hidden imports, small modules."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sketchnewton"
MAX_LINES = 520  # "no module over about 500 lines"


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_layers_contract_is_kept(monkeypatch):
    """kernels < losses < sketch < hessian < driver < front-ends, as declared in pyproject.toml."""
    cli = pytest.importorskip("importlinter.cli")
    monkeypatch.chdir(ROOT)
    assert cli.lint_imports(no_cache=True, no_logo=True) == cli.EXIT_STATUS_SUCCESS


def _function_local_package_imports(path):
    tree = ast.parse(path.read_text())
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "")
                                                     .startswith("sketchnewton")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            elif isinstance(node, ast.Import) and any(a.name.startswith("sketchnewton")
                                                      for a in node.names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_function_local_imports_of_package_modules():
    """Imports of the package's own modules sit at the top of each module (no hidden cycles)."""
    found = [hit for path in _modules() for hit in _function_local_package_imports(path)]
    assert found == []


def test_no_module_over_about_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
