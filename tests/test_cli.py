"""The command line: ``sketchnewton demo`` / ``solve`` / ``fit`` and safe file loading.

Subprocess tests run the real CLI (``python -m sketchnewton`` with
``PYTHONPATH`` at the repository root; the console script when installed).
Each subprocess pays the package's import time (~2-3 s), so only a few
end-to-end runs use one; everything else is checked in-process through
``main()`` (the same code path) and ``sketchnewton._io`` (see test_io.py).
"""

import errno
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

import sketchnewton
from sketchnewton import _io
from sketchnewton.cli import _jsonable, build_parser, main
from sketchnewton.datasets import make_regression_problem

from conftest import npy_bytes

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


def run_main(capsys, *args):
    """``main(args)`` in-process: ``(status, stdout, stderr)``."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def assert_error(result, contains=(), status=2):
    """One ``sketchnewton: error:`` line on stderr, with every string of ``contains``."""
    got, out, err = result
    assert got == status, (got, out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sketchnewton: error: "), err
    for text in (contains,) if isinstance(contains, str) else contains:
        assert text.lower() in lines[0].lower(), lines[0]
    return lines[0]




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
    (d / "A.xlsx").write_text("1,2\n3,4\n")
    np.savetxt(d / "A.csv", pb.A.toarray(), delimiter=",", fmt="%.17g")
    return d


# ----------------------------------------------------------------------------
# solve: every format, in a subprocess
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("A_name, b_name", [("A.npz", "b.npy"), ("A_svm.txt", "b.npy")])
def test_solve_formats(files, planted, tmp_path, A_name, b_name):
    out, report = tmp_path / "x.npy", tmp_path / "result.json"
    proc = run_cli("solve", files / A_name, files / b_name, "--eps", EPS, "--out", out,
                   "--json", report, "--verbose", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    _check_solve_outputs(proc.stdout, out, report, planted)


@pytest.mark.parametrize("A_name, b_name", [
    ("A.npy", "b.txt"), ("A.mtx", "b.npy"), ("A.svm", "b.txt"), ("A.csv", "b.npy"),
])
def test_solve_formats_in_process(files, planted, tmp_path, capsys, A_name, b_name):
    out, report = tmp_path / "x.npy", tmp_path / "result.json"
    status, stdout, stderr = run_main(capsys, "solve", files / A_name, files / b_name, "--eps",
                                      EPS, "--out", out, "--json", report, "--verbose")
    assert status == 0, stderr
    assert stderr == ""
    _check_solve_outputs(stdout, out, report, planted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json", "x.npy"]  # no temps


def _check_solve_outputs(stdout, out, report, planted):
    assert "converged" in stdout and "iterations" in stdout
    assert "iter" in stdout.splitlines()[1]  # --verbose: the per-iteration table
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
    (["solve", "{d}/A.npz", "{d}/b.npy", "--eps", "-1"], "--eps"),
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
    assert lines[0].startswith("sketchnewton: warning: ")
    assert "increase --max-iter (now 1)" in lines[0]  # what to try
    assert "maximum number of iterations" in proc.stdout
    assert out.exists()  # x is still written


# ----------------------------------------------------------------------------
# bad input, in-process (same code path, no interpreter start-up)
# ----------------------------------------------------------------------------

def _zip_npz(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)




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
        "format.npy": npy_bytes(np.bytes_(b"csr")), "shape.npy": npy_bytes(np.array([2, 2])),
        "data.npy": npy_bytes(shape=(10**13,)), "indices.npy": npy_bytes(np.zeros(1, np.int32)),
        "indptr.npy": npy_bytes(np.array([0, 1, 1], np.int32))})
    (d / "b_words.txt").write_text("1\nabc\n")
    (d / "b_2col.txt").write_text("1 2\n3 4\n")
    (d / "b_empty.txt").write_text("")
    np.save(d / "b_2d.npy", np.ones((4, 3)))
    (d / "b.bin").write_bytes(b"\0\0")
    np.save(d / "x0_wrong.npy", np.ones(3))
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2000, 8"  # unterminated
    header += b" " * (118 - len(header)) + b"\n"
    (d / "A_tokens.npy").write_bytes(b"\x93NUMPY\x01\x00" + bytes([len(header), 0]) + header)
    np.save(d / "A_timedelta.npy", np.ones((2000, 8), dtype="m8[s]"))
    np.save(d / "b_datetime.npy", np.ones(2000, dtype="M8[D]"))
    np.savez(d / "A_floatidx.npz", data=A.data, indices=A.indices.astype(np.float64),
             indptr=A.indptr, format=np.bytes_(b"csr"), shape=np.array(A.shape))
    (d / "A_ragged.csv").write_text("1,2,3\n4,5,6\n7,8\n")
    return d


@pytest.mark.parametrize("args, contains", [
    # (formerly run in a subprocess)
    (["{d}/A_fake.npy", "{d}/b.npy"], "not a .npy file"),
    (["{d}/A.npz", "{d}/b_short.npy"], "has length 1999"),
    (["{d}/A.npz", "{d}/b_nan.txt"], "non-finite"),
    (["{d}/A_inf.npy", "{d}/b.npy"], "non-finite"),
    (["{d}/A_empty.npz", "{d}/b.npy"], "empty"),
    (["{d}/A.xlsx", "{d}/b.npy"], "unknown extension"),
    (["{d}/A.npz", "{d}/b.npy", "--method", "newtonian"], "--method"),
    (["{d}/A_obj.npy", "{d}/b.npy"], "refusing to unpickle"),
    (["{d}/A_tokens.npy", "{d}/b.npy"], "A_tokens.npy' has an invalid .npy header"),  # item 2
    (["{d}/A_timedelta.npy", "{d}/b.npy"], "dtype timedelta64[s]"),  # item 7
    (["{d}/A.npz", "{d}/b_datetime.npy"], "dtype datetime64[D]"),
    (["{d}/A_floatidx.npz", "{d}/b.npy"], "index arrays must be integers"),
    (["{d}/A_ragged.csv", "{d}/b.npy"], "line 3 has 2 values but line 1 has 3"),  # item 10
    (["{d}/A.npz", "{d}/b.npy", "--eps", "1e-300"], "below what float64"),  # item 11
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
    (["frobnicate"], "invalid choice"),
    (["demo", "--n", "1e12", "--d", "10"], "would need"),  # refused before generating
])
def test_bad_command_line_in_process(capsys, args, contains):
    assert main(args) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sketchnewton: error: ")
    assert contains in lines[0]


def test_memory_limit_refuses_large_files(files, monkeypatch, capsys):
    monkeypatch.setattr(_io._files, "available_memory", lambda: 10_000)
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


def test_solve_with_a_warm_start_says_so(tmp_path, capsys):
    pb = make_regression_problem(8000, 6, link="resnet", nnz_per_row=3, noise=0.5,
                                 random_state=1)
    sp.save_npz(tmp_path / "A.npz", pb.A)
    np.savetxt(tmp_path / "b.txt", pb.b)
    args = ["solve", str(tmp_path / "A.npz"), str(tmp_path / "b.txt"), "--eps", "1e-8"]
    assert main(args + ["--presolve", "sample"]) == 0
    out = capsys.readouterr().out
    assert "warm start: 600 sampled rows" in out and "success True" in out
    assert main(args + ["--presolve", "none"]) == 0
    assert "warm start" not in capsys.readouterr().out


# ----------------------------------------------------------------------------
# --help
# ----------------------------------------------------------------------------

DEMO_OPTIONS = ("--n", "--d", "--nnz-per-row", "--density", "--link", "--z-std", "--noise",
                "--eps", "--method", "--seed", "--compare")
SOLVE_OPTIONS = ("--link", "--lam", "--w", "--eps", "--method", "--sketch", "--sketch-size",
                 "--seed", "--max-iter", "--presolve", "--x0", "--out", "--json", "--zero-based", "--verbose")
FIT_OPTIONS = ("--labels", "--C", "--no-intercept", "--tol", "--method", "--max-iter", "--seed",
               "--test", "--test-labels", "--model", "--json", "--n-features", "--zero-based",
               "--verbose")


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


@pytest.mark.parametrize("command, options", [("demo", DEMO_OPTIONS), ("solve", SOLVE_OPTIONS),
                                             ("fit", FIT_OPTIONS)])
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
    assert "demo" in text and "solve" in text and "fit" in text


# ----------------------------------------------------------------------------
# demo, in a subprocess
# ----------------------------------------------------------------------------

def test_demo_small(tmp_path):
    proc = run_cli("demo", "--n", "20000", "--d", "20", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout
    assert "n = 20,000, d = 20" in out
    # what it costs and where it is, before the long steps
    assert "expected time: under 10 s" in out
    assert out.index("[1/3] generating") < out.index("[2/3] compiling") < out.index("[3/3] solving")
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
    # the peer is configured as its users would: scipy's line search never fails on our settings
    assert "ABNORMAL" not in out and "stopping rule: oracle" in out and "ftol = 1e-15" in out
    summary = out[out.index("summary"):].splitlines()
    methods = [line.split()[0] for line in summary[2:]]
    assert len(methods) == 3 and methods[1:] == ["exact", "lbfgs"]
    for line in summary[2:4]:
        assert line.split()[-1] == "True"


# ----------------------------------------------------------------------------
# item 1: numerical failures are one-line errors naming the likely cause
# ----------------------------------------------------------------------------

def test_huge_values_are_a_clear_error(files, planted, tmp_path, capsys):
    A = planted.A.toarray()
    A[0, 0] = 1e300
    np.save(tmp_path / "A_huge.npy", A)
    result = run_main(capsys, "solve", tmp_path / "A_huge.npy", files / "b.npy",
                      "--out", tmp_path / "x.npy")
    line = assert_error(result, ["|A| = 1e+300", "rescale the data"])
    assert "Traceback" not in result[1] + result[2]
    assert "LinAlgError" in line or "numerically" in line
    assert not (tmp_path / "x.npy").exists()
    b = planted.b.copy()
    b[0] = 1e300
    np.save(tmp_path / "b_huge.npy", b)
    assert_error(run_main(capsys, "solve", files / "A.npz", tmp_path / "b_huge.npy"),
                 ["|b| = 1e+300", "rescale"])


@pytest.mark.parametrize("error", [np.linalg.LinAlgError("singular matrix"),
                                   FloatingPointError("overflow"), OverflowError("math range")])
def test_numerical_errors_of_the_solver_are_reported(files, monkeypatch, capsys, error):
    def failing_solve(*args, **kwargs):
        raise error
    monkeypatch.setattr(sketchnewton.cli._run, "solve", failing_solve)
    line = assert_error(run_main(capsys, "solve", files / "A.npz", files / "b.npy"),
                        ["failed numerically", type(error).__name__, "rescale"])
    assert "largest |A|" in line


def test_internal_error_is_one_line(files, monkeypatch, capsys):
    def broken_solve(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(sketchnewton.cli._run, "solve", broken_solve)
    args = ["solve", str(files / "A.npz"), str(files / "b.npy")]
    assert_error(run_main(capsys, *args), ["internal error (RuntimeError: boom)",
                                           "SKETCHNEWTON_TRACEBACK=1"])
    monkeypatch.setenv("SKETCHNEWTON_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(args)


# ----------------------------------------------------------------------------
# item 3: non-regular inputs are refused up front (no hang)
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["A", "b", "x0", "w"])
def test_fifo_inputs_are_refused(files, tmp_path, capsys, alarm, role):
    fifo = tmp_path / ("pipe.npy" if role == "A" else "pipe.txt")
    os.mkfifo(fifo)
    args = {"A": [fifo, files / "b.npy"], "b": [files / "A.npz", fifo],
            "x0": [files / "A.npz", files / "b.npy", "--x0", fifo],
            "w": [files / "A.npz", files / "b.npy", "--w", fifo]}[role]
    line = assert_error(run_main(capsys, "solve", *args),
                        "is a FIFO (named pipe), not a regular file")
    assert line.startswith(f"sketchnewton: error: {role} file ")


def test_device_input_is_refused(files, tmp_path, capsys, alarm):
    (tmp_path / "zero.npy").symlink_to("/dev/zero")
    assert_error(run_main(capsys, "solve", tmp_path / "zero.npy", files / "b.npy"),
                 "zero.npy' is a device, not a regular file")


# ----------------------------------------------------------------------------
# items 4 and 5: outputs
# ----------------------------------------------------------------------------

def test_output_may_not_be_an_input(files, tmp_path, capsys):
    shutil.copy(files / "A.npy", tmp_path / "A.npy")
    shutil.copy(files / "b.txt", tmp_path / "b.txt")
    os.link(tmp_path / "A.npy", tmp_path / "hard.npy")
    (tmp_path / "soft.txt").symlink_to(tmp_path / "b.txt")
    before = {p: (tmp_path / p).read_bytes() for p in ("A.npy", "b.txt")}
    A, b = tmp_path / "A.npy", tmp_path / "b.txt"
    for args in ([A, b, "--out", A], [A, b, "--out", b], [A, b, "--out", tmp_path / "hard.npy"],
                 [A, b, "--out", tmp_path / "soft.txt"],
                 [A, b, "--out", tmp_path / "y.npy", "--x0", tmp_path / "y.npy"]):
        assert_error(run_main(capsys, "solve", *args), ["--out", "is the input file"])
    for p, content in before.items():
        assert (tmp_path / p).read_bytes() == content
    # --out and --json naming the same file
    (tmp_path / "r.json").symlink_to(tmp_path / "x.npy")
    assert_error(run_main(capsys, "solve", A, b, "--out", tmp_path / "x.npy", "--json",
                          tmp_path / "r.json"), ["--json", "also the --out file"])


def _unwritable_dir(tmp_path):
    """A directory in which this process cannot create files."""
    if os.geteuid() == 0:  # root can write anywhere but in pseudo file systems
        if not os.path.isdir("/proc/self"):
            pytest.skip("no unwritable directory available to root")
        return "/proc"
    d = tmp_path / "readonly"
    d.mkdir()
    os.chmod(d, 0o500)
    return str(d)


def test_every_output_is_checked_before_solving(files, tmp_path, capsys):
    bad_dir = _unwritable_dir(tmp_path)
    ok = tmp_path / "ok.npy"
    status, out, err = run_main(capsys, "solve", files / "A.npz", files / "b.npy", "--out", ok,
                                "--json", os.path.join(bad_dir, "r.json"))
    assert_error((status, out, err), ["--json", "cannot create files"])
    assert out == ""  # nothing was loaded or solved
    assert not ok.exists()
    os.mkfifo(tmp_path / "pipe.json")
    assert_error(run_main(capsys, "solve", files / "A.npz", files / "b.npy", "--json",
                          tmp_path / "pipe.json"), ["--json", "not a regular file"])
    (tmp_path / "dir.npy").mkdir()
    assert_error(run_main(capsys, "solve", files / "A.npz", files / "b.npy", "--out",
                          tmp_path / "dir.npy"), ["--out", "is a directory"])


def test_disk_full_leaves_no_partial_outputs(files, tmp_path, capsys, monkeypatch):
    real_fsync = os.fsync
    calls = []

    def disk_full_on_second(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", disk_full_on_second)
    (tmp_path / "r.json").write_text("previous result\n")
    result = run_main(capsys, "solve", files / "A.npz", files / "b.npy", "--out",
                      tmp_path / "x.npy", "--json", tmp_path / "r.json")
    assert_error(result, [str(tmp_path / "r.json"), "No space left on device"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no x.npy, no temps
    assert (tmp_path / "r.json").read_text() == "previous result\n"


# ----------------------------------------------------------------------------
# item 6: declared sizes checked before allocation, through the command line
# ----------------------------------------------------------------------------

def test_huge_declared_shape_refused_by_the_cli(tmp_path, files, capsys, monkeypatch):
    monkeypatch.setattr(_io._files, "available_memory", lambda: 1 << 31)
    rows = 300_000_000
    np.savez(tmp_path / "A.npz", data=np.ones(2), row=np.array([0, 1]), col=np.array([0, 1]),
             format=np.bytes_(b"coo"), shape=np.array([rows, 5]))
    assert_error(run_main(capsys, "solve", tmp_path / "A.npz", files / "b.npy"),
                 ["would need", "300,000,000"])
    (tmp_path / "A.mtx").write_text("%%MatrixMarket matrix coordinate real general\n"
                                    "1000000000000 5 1\n1 1 1.0\n")
    assert_error(run_main(capsys, "solve", tmp_path / "A.mtx", files / "b.npy"), "would need")


# ----------------------------------------------------------------------------
# items 8, 9, 11: --version, no arguments, help texts, --eps floor
# ----------------------------------------------------------------------------

def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"sketchnewton {sketchnewton.__version__}\n"


def test_no_arguments_prints_usage_and_exits_2(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("usage: sketchnewton") and "{demo,solve,fit}" in err[0]
    assert err[-1].startswith("sketchnewton: error: ") and "required" in err[-1]


def test_help_texts(capsys):
    sub = _subparsers()
    helps = {s: a.help for a in sub["solve"]._actions for s in a.option_strings}
    assert "default 20 d" in helps["--sketch-size"] and "10 d" not in helps["--sketch-size"]
    assert "machine epsilon" in helps["--eps"] and "||x0||" in helps["--eps"]


def test_eps_floor_scales_with_x0(files, tmp_path, capsys):
    np.save(tmp_path / "x0.npy", np.full(8, 1e6 / np.sqrt(8)))  # ||x0|| = 1e6
    status, out, err = run_main(capsys, "solve", files / "A.npz", files / "b.npy", "--x0",
                                tmp_path / "x0.npy", "--eps", "1e-9")
    assert_error((status, out, err), ["--eps", "below what float64", "2.2e-07"])
    assert "sketchnewton solve:" not in out  # refused before solving
    assert_error(run_main(capsys, "demo", "--eps", "1e-300"), "below what float64")


# ----------------------------------------------------------------------------
# item 12: fit
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clf(tmp_path_factory):
    """Binary svmlight train/test (test narrower), multiclass, dense + labels, bad labels."""
    d = tmp_path_factory.mktemp("fit")
    rng = np.random.default_rng(0)
    X = sp.random(400, 12, density=0.4, random_state=rng, format="csr")
    w = rng.standard_normal(12)
    y = np.where(X @ w + 0.3 * rng.standard_normal(400) > np.median(X @ w), 1, -1)
    dump_svmlight_file(X[:300], y[:300], str(d / "train.svm"), zero_based=False)
    test = X[300:].tolil()
    test[:, 9:] = 0  # the test file has a smaller largest index
    dump_svmlight_file(test.tocsr(), y[300:], str(d / "test.svm"), zero_based=False)
    y3 = np.digitize(X @ w, np.quantile(X @ w, [1 / 3, 2 / 3]))
    dump_svmlight_file(X, y3, str(d / "multi.svm"))
    np.save(d / "X.npy", X.toarray())
    np.save(d / "y.npy", y)
    dump_svmlight_file(X, X @ w, str(d / "regression.svm"))
    dump_svmlight_file(X, np.ones(400), str(d / "one_class.svm"))
    np.save(d / "X_test.npy", X[300:].toarray())
    np.save(d / "y_test_unseen.npy", np.where(y[300:] > 0, 1, 7))
    return dict(dir=d, X=X, y=y, y3=y3)


def test_fit_subprocess(clf, tmp_path):
    d = clf["dir"]
    model, summary = tmp_path / "model.npz", tmp_path / "summary.json"
    proc = run_cli("fit", d / "train.svm", "--test", d / "test.svm", "--model", model,
                   "--json", summary, "--C", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout
    for text in ("300 x 12", "2 classes: -1, 1", "iterations", "training accuracy",
                 "test accuracy", "log-loss"):
        assert text in out, out
    with np.load(model, allow_pickle=False) as m:
        assert set(m.files) >= {"classes", "coef", "intercept", "C", "fit_intercept"}
        np.testing.assert_array_equal(m["classes"], [-1, 1])
        assert m["coef"].shape == (1, 12) and m["intercept"].shape == (1,)
        assert float(m["C"]) == 2.0 and bool(m["fit_intercept"])
        coef, intercept = m["coef"], m["intercept"]
    doc = json.loads(summary.read_text())
    assert doc["n"] == 300 and doc["d"] == 12 and doc["classes"] == [-1, 1]
    assert doc["converged"] is True and doc["method"] in ("exact", "pcg", "sketch")
    assert doc["test"]["n"] == 100 and 0.5 < doc["test"]["accuracy"] <= 1
    assert doc["test"]["log_loss"] > 0 and 0.5 < doc["train_accuracy"] <= 1
    # the model is scikit-learn's LogisticRegression(C=2) (to the solvers' tolerances)
    from sklearn.linear_model import LogisticRegression
    ref = LogisticRegression(C=2.0, tol=1e-10, max_iter=1000).fit(clf["X"][:300], clf["y"][:300])
    np.testing.assert_allclose(coef, ref.coef_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(intercept, ref.intercept_, rtol=1e-4, atol=1e-6)


def test_fit_multiclass_and_dense(clf, tmp_path, capsys):
    d = clf["dir"]
    model = tmp_path / "m.npz"
    status, out, err = run_main(capsys, "fit", d / "multi.svm", "--no-intercept", "--method",
                                "exact", "--model", model, "--n-features", "20")
    assert status == 0, err
    assert "3 classes: 0, 1, 2" in out and "method exact" in out
    with np.load(model, allow_pickle=False) as m:
        assert m["coef"].shape == (3, 20)  # --n-features widens the data
        np.testing.assert_array_equal(m["intercept"], 0)
        assert not bool(m["fit_intercept"])
    np.save(tmp_path / "Xt.npy", clf["X"][300:].toarray())
    np.save(tmp_path / "yt.npy", clf["y"][300:])
    status, out, err = run_main(capsys, "fit", d / "X.npy", "--labels", d / "y.npy", "--test",
                                tmp_path / "Xt.npy", "--test-labels", tmp_path / "yt.npy",
                                "--json", tmp_path / "s.json")
    assert status == 0, err
    assert "(dense)" in out and "test accuracy" in out
    assert json.loads((tmp_path / "s.json").read_text())["test"]["n"] == 100


def test_fit_not_converged(clf, tmp_path, capsys):
    status, out, err = run_main(capsys, "fit", clf["dir"] / "train.svm", "--max-iter", "1",
                                "--method", "exact", "--json", tmp_path / "s.json")
    assert status == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sketchnewton: warning: ")
    assert "increase --max-iter (now 1)" in lines[0] and "ConvergenceWarning" not in err
    assert json.loads((tmp_path / "s.json").read_text())["converged"] is False


def test_fit_numerical_error(clf, capsys, monkeypatch):
    def failing_fit(self, X, y):
        raise np.linalg.LinAlgError("the Hessian model is not finite")
    monkeypatch.setattr(sketchnewton.SketchedLogisticRegression, "fit", failing_fit)
    assert_error(run_main(capsys, "fit", clf["dir"] / "train.svm"),
                 ["failed numerically", "rescale"])


@pytest.mark.parametrize("args, contains", [
    (["{d}/regression.svm"], "not class labels"),
    (["{d}/one_class.svm"], "single class"),
    (["{d}/train.svm", "--labels", "{d}/y.npy"], "carry their labels"),
    (["{d}/X.npy"], "--labels"),
    (["{d}/X.npy", "--labels", "{d}/y_test_unseen.npy"], "has length 100 but"),
    (["{d}/X.npy", "--labels", "{d}/y.npy", "--test", "{d}/test.svm"], "same format"),
    (["{d}/X.npy", "--labels", "{d}/y.npy", "--test", "{d}/X_test.npy", "--test-labels",
      "{d}/y_test_unseen.npy"], "absent from the training data: 7"),
    (["{d}/train.svm", "--n-features", "5"], "n_features was set to 5"),
    (["{d}/train.svm", "--C", "0"], "--C"),
    (["{d}/train.svm", "--method", "lbfgs"], "--method"),
    (["{d}/train.svm", "--model", "{d}/model.pkl"], "must end in .npz"),
    (["{d}/train.svm", "--model", "{d}/nope/model.npz"], "does not exist"),
    (["{d}/missing.svm"], "does not exist"),
])
def test_fit_bad_input(clf, capsys, args, contains):
    assert_error(run_main(capsys, "fit", *[a.format(d=clf["dir"]) for a in args]), contains)


def test_fit_model_may_not_overwrite_an_input(clf, tmp_path, capsys):
    shutil.copy(clf["dir"] / "train.svm", tmp_path / "train.svm")
    (tmp_path / "m.npz").symlink_to(tmp_path / "train.svm")
    before = (tmp_path / "train.svm").read_bytes()
    assert_error(run_main(capsys, "fit", tmp_path / "train.svm", "--model", tmp_path / "m.npz"),
                 ["--model", "is the input file TRAIN"])
    assert (tmp_path / "train.svm").read_bytes() == before
