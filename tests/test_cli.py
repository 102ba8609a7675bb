"""The command line: ``sketchnewton demo`` / ``sketchnewton solve`` and safe file loading.

Subprocess tests run the real CLI (``python -m sketchnewton`` with
``PYTHONPATH`` at the repository root; the console script when installed).
Each subprocess pays the package's import time (~2-3 s), so the rarer loader
refusals are checked in-process through ``main()`` and ``sketchnewton._io``.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file

from sketchnewton import _io
from sketchnewton.cli import _jsonable, build_parser, main
from sketchnewton.datasets import make_regression_problem

ROOT = Path(__file__).resolve().parents[1]
EPS = 1e-8
RESULT_FIELDS = ("x", "fun", "grad_norm", "error_bound", "nit", "success", "status", "message",
                 "method", "passes", "time", "history")
HISTORY_KEYS = ("iter", "loss", "grad_norm", "step_size", "error_estimate", "passes", "seconds")


def run_cli(*args, cwd, exe=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]]
                                                       if env.get("PYTHONPATH") else []))
    cmd = [exe] if exe else [sys.executable, "-m", "sketchnewton"]
    return subprocess.run(cmd + [str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def assert_one_error_line(proc, status=2, contains=None):
    assert proc.returncode == status, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sketchnewton: error: "), lines[0]
    if contains is not None:
        assert contains.lower() in lines[0].lower(), lines[0]


def _npy_header_only(path, shape, descr="<f8", payload=b"\0" * 64):
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": descr, "fortran_order": False, "shape": shape})
        f.write(payload)


@pytest.fixture(scope="module")
def planted():
    return make_regression_problem(2000, 8, nnz_per_row=3, random_state=0)


@pytest.fixture(scope="module")
def files(planted, tmp_path_factory):
    """The planted problem in every input format, plus malformed files."""
    d = tmp_path_factory.mktemp("cli")
    pb = planted
    sp.save_npz(d / "A.npz", pb.A)
    sp.save_npz(d / "A_csc.npz", pb.A.tocsc())
    sp.save_npz(d / "A_coo.npz", pb.A.tocoo())
    np.save(d / "A.npy", pb.A.toarray())
    scipy.io.mmwrite(d / "A.mtx", pb.A)
    dump_svmlight_file(pb.A, np.zeros(pb.A.shape[0]), str(d / "A.svm"), zero_based=True)
    shutil.copy(d / "A.svm", d / "A_svm.txt")
    shutil.copy(d / "A.svm", d / "A.libsvm")
    np.save(d / "b.npy", pb.b)
    np.savetxt(d / "b.txt", pb.b, fmt="%.17g")
    # bad inputs
    np.save(d / "b_short.npy", pb.b[:-1])
    b = pb.b.copy()
    b[3] = np.nan
    np.savetxt(d / "b_nan.txt", b)
    A = pb.A.toarray()
    A[5, 2] = np.inf
    np.save(d / "A_inf.npy", A)
    sp.save_npz(d / "A_empty.npz", sp.csr_matrix((0, 8)))
    sp.save_npz(d / "A_zero.npz", sp.csr_matrix((2000, 8)))
    (d / "A_fake.npy").write_bytes(b"this is not a numpy file")
    (d / "A.csv").write_text("1,2\n3,4\n")
    return d


# ----------------------------------------------------------------------------
# solve: every format, in a subprocess
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("A_name, b_name", [
    ("A.npz", "b.npy"), ("A.npy", "b.txt"), ("A.mtx", "b.npy"), ("A.svm", "b.txt"),
    ("A_svm.txt", "b.npy"),
])
def test_solve_formats(files, planted, tmp_path, A_name, b_name):
    out, report = tmp_path / "x.npy", tmp_path / "result.json"
    proc = run_cli("solve", files / A_name, files / b_name, "--eps", EPS, "--out", out,
                   "--json", report, "--verbose", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "converged" in proc.stdout and "iterations" in proc.stdout
    assert "iter" in proc.stdout.splitlines()[1]  # --verbose: the per-iteration table
    x = np.load(out, allow_pickle=False)
    assert x.shape == (8,)
    assert np.linalg.norm(x - planted.x_true) <= EPS

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")
    doc = json.loads(report.read_text(), parse_constant=no_constants)
    for key in RESULT_FIELDS:
        assert key in doc, key
    assert doc["x"] == pytest.approx(x.tolist(), abs=0)
    assert doc["success"] is True and doc["status"] == 0
    assert isinstance(doc["nit"], int) and doc["nit"] == len(doc["history"]) - 1
    assert isinstance(doc["passes"], float) and doc["passes"] > 0
    for row in doc["history"]:
        assert set(HISTORY_KEYS) <= set(row)
    assert doc["history"][0]["error_estimate"] is None  # inf -> null
    assert doc["input"]["shape"] == [2000, 8]


def test_console_script(files, planted, tmp_path):
    exe = shutil.which("sketchnewton")
    if exe is None:
        pytest.skip("the console script 'sketchnewton' is not installed (pip install -e .)")
    out = tmp_path / "x.npy"
    proc = run_cli("solve", files / "A.npz", files / "b.npy", "--eps", EPS, "--out", out,
                   cwd=tmp_path, exe=exe)
    assert proc.returncode == 0, proc.stderr
    assert np.linalg.norm(np.load(out) - planted.x_true) <= EPS


# ----------------------------------------------------------------------------
# bad input, in a subprocess: exit 2, one line on stderr, no traceback
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("args, contains", [
    (["solve", "missing.npz", "{d}/b.npy"], "does not exist"),
    (["solve", "{d}/A_fake.npy", "{d}/b.npy"], "not a .npy file"),
    (["solve", "{d}/A.npz", "{d}/b_short.npy"], "has length 1999"),
    (["solve", "{d}/A.npz", "{d}/b_nan.txt"], "non-finite"),
    (["solve", "{d}/A_inf.npy", "{d}/b.npy"], "non-finite"),
    (["solve", "{d}/A_empty.npz", "{d}/b.npy"], "empty"),
    (["solve", "{d}/A.csv", "{d}/b.npy"], "unknown extension"),
    (["solve", "{d}/A.npz", "{d}/b.npy", "--eps", "-1"], "--eps"),
    (["solve", "{d}/A.npz", "{d}/b.npy", "--method", "newtonian"], "--method"),
])
def test_bad_input_subprocess(files, tmp_path, args, contains):
    proc = run_cli(*[a.format(d=files) for a in args], cwd=tmp_path)
    assert_one_error_line(proc, contains=contains)
    assert proc.stdout == ""


def test_not_converged_subprocess(files, tmp_path):
    out = tmp_path / "x.npy"
    proc = run_cli("solve", files / "A.npz", files / "b.npy", "--max-iter", "1", "--out", out,
                   cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "ConvergenceWarning" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "did not reach eps" in lines[0], proc.stderr
    assert "maximum number of iterations" in proc.stdout
    assert out.exists()  # x is still written


# ----------------------------------------------------------------------------
# bad input, in-process (same code path, no interpreter start-up)
# ----------------------------------------------------------------------------

def _zip_npz(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy_bytes(arr=None, shape=None, descr="<f8"):
    import io
    buf = io.BytesIO()
    if arr is not None:
        np.save(buf, arr, allow_pickle=False)
    else:
        np.lib.format.write_array_header_1_0(
            buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


@pytest.fixture(scope="module")
def bad_files(files, planted):
    d = files
    A = planted.A
    np.save(d / "A_obj.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    np.savez(d / "A_dense.npz", A=A.toarray())
    (d / "A_fake.mtx").write_text("1 2 3\n")
    (d / "A_fake.npz").write_text("not a zip archive")
    (d / "A_bin.svm").write_bytes(np.arange(10.0).tobytes())
    (d / "A_numbers.txt").write_text("1.5\n2.5\n")
    (d / "A_complex.mtx").write_text("%%MatrixMarket matrix coordinate complex general\n"
                                     "2 2 1\n1 1 1.0 2.0\n")
    _npy_header_only(d / "A_huge.npy", (10**7, 10**7))
    _npy_header_only(d / "A_trunc.npy", (2000, 8))
    _npy_header_only(d / "A_str.npy", (2, 2), descr="<U4", payload=b"\0" * 64)
    np.save(d / "A_1d.npy", np.ones(5))
    np.savez(d / "A_badidx.npz", data=A.data, indices=A.indices * 1000, indptr=A.indptr,
             format=np.bytes_(b"csr"), shape=np.array(A.shape))
    np.savez(d / "A_lil.npz", data=A.data, indices=A.indices, indptr=A.indptr,
             format=np.bytes_(b"lil"), shape=np.array(A.shape))
    # a zip whose members announce a huge array: refused before allocation
    _zip_npz(d / "A_bomb.npz", {
        "format.npy": _npy_bytes(np.bytes_(b"csr")), "shape.npy": _npy_bytes(np.array([2, 2])),
        "data.npy": _npy_bytes(shape=(10**13,)), "indices.npy": _npy_bytes(np.zeros(1, np.int32)),
        "indptr.npy": _npy_bytes(np.array([0, 1, 1], np.int32))})
    (d / "b_words.txt").write_text("1\nabc\n")
    (d / "b_2col.txt").write_text("1 2\n3 4\n")
    (d / "b_empty.txt").write_text("")
    np.save(d / "b_2d.npy", np.ones((4, 3)))
    (d / "b.bin").write_bytes(b"\0\0")
    np.save(d / "x0_wrong.npy", np.ones(3))
    return d


@pytest.mark.parametrize("args, contains", [
    (["{d}/A_obj.npy", "{d}/b.npy"], "refusing to unpickle"),
    (["{d}/A_dense.npz", "{d}/b.npy"], "not a scipy sparse .npz"),
    (["{d}/A_fake.npz", "{d}/b.npy"], "not a .npz"),
    (["{d}/A_fake.mtx", "{d}/b.npy"], "not a MatrixMarket file"),
    (["{d}/A_complex.mtx", "{d}/b.npy"], "field 'complex'"),
    (["{d}/A_bin.svm", "{d}/b.npy"], "binary"),
    (["{d}/A_numbers.txt", "{d}/b.npy"], "not an svmlight"),
    (["{d}/A_huge.npy", "{d}/b.npy"], "would need"),
    (["{d}/A_trunc.npy", "{d}/b.npy"], "truncated"),
    (["{d}/A_str.npy", "{d}/b.npy"], "expected real numbers"),
    (["{d}/A_1d.npy", "{d}/b.npy"], "expected a 2-D matrix"),
    (["{d}/A_badidx.npz", "{d}/b.npy"], "invalid sparse matrix"),
    (["{d}/A_lil.npz", "{d}/b.npy"], "unsupported sparse format"),
    (["{d}/A_bomb.npz", "{d}/b.npy"], "would need"),
    (["{d}/A_zero.npz", "{d}/b.npy"], "no non-zero entries"),
    (["{d}/A.npz", "{d}/b_words.txt"], "one number per line"),
    (["{d}/A.npz", "{d}/b_2col.txt"], "2 numbers per line"),
    (["{d}/A.npz", "{d}/b_empty.txt"], "empty"),
    (["{d}/A.npz", "{d}/b_2d.npy"], "expected a vector"),
    (["{d}/A.npz", "{d}/b.bin"], "unknown extension"),
    (["{d}/A.npz", "{d}"], "unknown extension"),
    (["{d}", "{d}/b.npy"], "unknown extension"),
    (["{d}/A.npz", "{d}/b.npy", "--x0", "{d}/x0_wrong.npy"], "x0"),
    (["{d}/A.npz", "{d}/b.npy", "--w", "{d}/missing.npy"], "does not exist"),
    (["{d}/A.npz", "{d}/b.npy", "--w", "nan"], "w must be finite"),
    (["{d}/A.npz", "{d}/b.npy", "--link", "sinh", "--x0", "{d}/x0_zero.txt"], "domain"),
    (["{d}/A.npz", "{d}/b.npy", "--out", "{d}/nope/x.npy"], "does not exist"),
    (["{d}/A.npz", "{d}/b.npy", "--out", "{d}/x.pkl"], "must end in"),
    (["{d}/A.npz", "{d}/b.npy", "--json", "{d}/r.txt"], "must end in"),
    (["{d}/A.npz", "{d}/b.npy", "--sketch-size", "0"], "--sketch-size"),
    (["{d}/A.npz", "{d}/b.npy", "--max-iter", "1.5"], "--max-iter"),
    (["{d}/A.npz", "{d}/b.npy", "--lam", "-1"], "--lam"),
    (["{d}/A.npz", "{d}/b.npy", "--lam", "inf"], "--lam"),
    (["{d}/A.npz", "{d}/b.npy", "--sketch", "magic"], "--sketch"),
    (["{d}/A.npz", "{d}/b.npy", "--zero-based", "maybe"], "--zero-based"),
    (["{d}/A.npz", "{d}/b.npy", "--frobnicate"], "unrecognized arguments"),
    (["{d}/A.npz"], "required"),
])
def test_bad_solve_input_in_process(bad_files, capsys, args, contains):
    np.savetxt(bad_files / "x0_zero.txt", np.zeros(8))
    status = main(["solve"] + [a.format(d=bad_files) for a in args])
    out, err = capsys.readouterr()
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sketchnewton: error: "), err
    assert contains.lower() in lines[0].lower(), lines[0]


@pytest.mark.parametrize("args, contains", [
    (["demo", "--n", "0"], "--n"),
    (["demo", "--d", "5", "--nnz-per-row", "9"], "nnz_per_row"),
    (["demo", "--density", "1.5"], "--density"),
    (["demo", "--eps", "0"], "--eps"),
    (["demo", "--link", "tanh"], "--link"),
    ([], "required"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_command_line_in_process(capsys, args, contains):
    assert main(args) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sketchnewton: error: ")
    assert contains in lines[0]


def test_memory_limit_refuses_large_files(files, monkeypatch, capsys):
    monkeypatch.setattr(_io, "available_memory", lambda: 10_000)
    assert main(["solve", str(files / "A.npz"), str(files / "b.npy")]) == 2
    err = capsys.readouterr().err
    assert "more than the available memory" in err and len(err.splitlines()) == 1
    with pytest.raises(_io.LoadError, match="would need"):
        _io.load_matrix(files / "A.npy")
    with pytest.raises(_io.LoadError, match="would need"):
        _io.load_matrix(files / "A.mtx")
    with pytest.raises(_io.LoadError, match="would need"):
        _io.load_matrix(files / "A.svm")
    with pytest.raises(_io.LoadError, match="would need"):
        _io.check_problem_size(10**6, 10**4, 10**7)


def test_loaders_round_trip(files, planted):
    dense = planted.A.toarray()
    for name in ("A.npz", "A_csc.npz", "A_coo.npz", "A.mtx", "A.svm", "A.libsvm", "A_svm.txt"):
        A = _io.load_matrix(files / name)
        assert sp.issparse(A) and A.format == "csr" and A.indices.dtype == np.int32, name
        np.testing.assert_allclose(A.toarray(), dense, rtol=1e-15, atol=0, err_msg=name)
    np.testing.assert_array_equal(_io.load_matrix(files / "A.npy"), dense)
    scipy.io.mmwrite(files / "A_dense.mtx", dense[:50])  # MatrixMarket "array" format
    A = _io.load_matrix(files / "A_dense.mtx")
    assert isinstance(A, np.ndarray)
    np.testing.assert_allclose(A, dense[:50], rtol=1e-15, atol=0)
    np.testing.assert_array_equal(_io.load_vector(files / "b.npy"), planted.b)
    np.testing.assert_array_equal(_io.load_vector(files / "b.txt"), planted.b)


def test_npy_is_never_unpickled(files, monkeypatch):
    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle", False))
        return real_load(*args, **kwargs)
    monkeypatch.setattr(np, "load", spy)
    _io.load_matrix(files / "A.npy")
    _io.load_matrix(files / "A.npz")
    _io.load_vector(files / "b.npy")
    assert calls and not any(calls)


def test_jsonable():
    doc = _jsonable({"a": np.float64(1.5), "b": np.int64(3), "c": np.bool_(True),
                     "d": np.array([1.0, np.inf]), "e": [np.nan, "s", None], 1: (2, 3)})
    assert doc == {"a": 1.5, "b": 3, "c": True, "d": [1.0, None], "e": [None, "s", None],
                   "1": [2, 3]}
    json.dumps(doc, allow_nan=False)


def test_solve_in_process_text_output(files, planted, tmp_path, capsys):
    out = tmp_path / "x.txt"
    assert main(["solve", str(files / "A.npz"), str(files / "b.txt"), "--eps", "1e-8",
                 "--method", "pcg", "--sketch", "countsketch", "--lam", "0", "--w", "0",
                 "--out", str(out)]) == 0
    assert "method pcg" in capsys.readouterr().out
    x = np.loadtxt(out)
    assert np.linalg.norm(x - planted.x_true) <= EPS


# ----------------------------------------------------------------------------
# --help
# ----------------------------------------------------------------------------

DEMO_OPTIONS = ("--n", "--d", "--nnz-per-row", "--density", "--link", "--z-std", "--noise",
                "--eps", "--method", "--seed", "--compare")
SOLVE_OPTIONS = ("--link", "--lam", "--w", "--eps", "--method", "--sketch", "--sketch-size",
                 "--seed", "--max-iter", "--x0", "--out", "--json", "--zero-based", "--verbose")


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


@pytest.mark.parametrize("command, options", [("demo", DEMO_OPTIONS), ("solve", SOLVE_OPTIONS)])
def test_help_lists_every_option(capsys, command, options):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text, option
    sub = _subparsers()[command]
    declared = {s for a in sub._actions for s in a.option_strings if s.startswith("--")}
    assert declared - {"--help"} == set(options)
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and "default" in action.help, action.option_strings


def test_top_level_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "demo" in text and "solve" in text


# ----------------------------------------------------------------------------
# demo, in a subprocess
# ----------------------------------------------------------------------------

def test_demo_small(tmp_path):
    proc = run_cli("demo", "--n", "20000", "--d", "20", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout
    assert "n = 20,000, d = 20" in out
    assert "iter" in out and "err est" in out  # per-iteration progress
    summary = out[out.index("summary"):].splitlines()
    assert summary[1].split() == ["method", "iter", "passes", "seconds", "error", "bound", "ok"]
    row = summary[2].split()
    assert row[-1] == "True" and float(row[4]) <= 1e-8


def test_demo_compare(tmp_path):
    proc = run_cli("demo", "--n", "5000", "--d", "10", "--compare", "--eps", "1e-6",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    assert "scipy L-BFGS-B" in out
    summary = out[out.index("summary"):].splitlines()
    methods = [line.split()[0] for line in summary[2:]]
    assert len(methods) == 3 and methods[1:] == ["exact", "lbfgs"]
    for line in summary[2:4]:
        assert line.split()[-1] == "True"
