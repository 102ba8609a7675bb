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


def test_driver_strategies_and_protocol_type_check(monkeypatch):
    """mypy on the files ``[tool.mypy]`` in pyproject.toml lists (the driver, the strategies,
    the stopping rules, the loss protocol)."""
    api = pytest.importorskip("mypy.api")
    monkeypatch.chdir(ROOT)
    out, err, status = api.run([])
    assert status == 0, out + err


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


def test_import_and_solve_leave_global_state_alone():
    """Importing the package (and solving) changes neither numba's threading layer nor its
    thread count nor the environment (run in a fresh interpreter)."""
    import subprocess
    import sys

    code = """
import os, numba, sklearn  # scikit-learn sets two KMP_* variables on its own import
before = (numba.config.THREADING_LAYER, numba.get_num_threads(), dict(os.environ))
import sketchnewton as sn
after_import = (numba.config.THREADING_LAYER, numba.get_num_threads(), dict(os.environ))
from sketchnewton.datasets import make_regression_problem
pb = make_regression_problem(3000, 5, nnz_per_row=3, random_state=0)
sn.solve(pb.A, pb.b, 1e-6, method="pcg", random_state=0)
after_solve = (numba.config.THREADING_LAYER, numba.get_num_threads(), dict(os.environ))
assert before == after_import == after_solve, (before[:2], after_import[:2], after_solve[:2])
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]
