"""The benchmark suite's quick mode runs end to end and writes what it claims; every study is
registered behind ``python -m benchmarks`` with a docstring and a ``run``."""

import csv
import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytest.importorskip("matplotlib")


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.mark.parametrize("study", ["scaling_n", "scaling_d", "sketch", "accuracy", "shortcut",
                                   "memory"])
def test_quick_mode_writes_csv_plot_and_summary(quick_run, study):
    assert _rows(quick_run / "results" / f"{study}_quick.csv")
    if study != "memory":
        png = quick_run / "plots" / f"{study}_quick.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (quick_run / "RESULTS.md").read_text()
    assert f"<!-- study:{study} -->" in text
    assert "Machine:" in text


def test_success_means_within_eps_of_the_reference(quick_run):
    """The harness's ``success`` is ``error <= eps`` by definition; what is checked is the
    error itself, ``||x - x_ref||`` against the independent reference (scipy trust-exact),
    for every run of ours."""
    rows = _rows(quick_run / "results" / "scaling_n_quick.csv")
    for r in rows:
        assert (r["success"] == "True") == (float(r["error"]) <= 1e-8), r
    ours = [r for r in rows if r["solver"] in ("auto", "exact", "sketch", "pcg")]
    assert ours
    for r in ours:
        assert 0 <= float(r["error"]) <= 1e-8, r


def test_memory_is_linear_in_n(quick_run):
    rows = _rows(quick_run / "results" / "memory_quick.csv")
    for r in rows:
        # a fixed number of n-vectors: O(nnz + n + s d + d^2), never a copy of A per iteration
        assert 0 < float(r["n_vectors"]) < 40, r


def test_summary_keeps_other_sections(tmp_path):
    from benchmarks._suite import update_summary

    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Older section\n\nkept\n")
    update_summary(str(path), {"sketch": "sketch v1"}, "header")
    update_summary(str(path), {"memory": "memory v1"}, "header")
    update_summary(str(path), {"sketch": "sketch v2"}, "header")
    text = path.read_text()
    assert "kept" in text and "memory v1" in text and "sketch v2" in text
    assert "sketch v1" not in text
    assert text.index("sketch v2") < text.index("memory v1")


def test_outputs_go_to_benchmarks_out_unless_update(tmp_path):
    from argparse import Namespace

    from benchmarks._common import BENCH, output_root
    assert output_root(Namespace(out=None, update=False)) == BENCH / "out"
    assert output_root(Namespace(out=str(tmp_path), update=False)) == tmp_path
    assert output_root(Namespace(out=None, update=True)) == BENCH


def test_plots_only_redraws_every_plot_from_the_committed_csvs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--plots-only", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["accuracy.png", "estimators.png", "scaling_d.png", "scaling_n.png",
                     "shortcut.png", "sketch.png"]
    assert not (tmp_path / "results").exists()  # nothing rerun, nothing written beside the plots


# -- the registry ------------------------------------------------------------------------------

def _bench(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_every_registered_study_imports_with_a_docstring_and_run():
    from benchmarks._common import add_shared_options
    from benchmarks.studies import REGISTRY, SUITE, study_parser

    assert SUITE == ("scaling_n", "scaling_d", "sketch", "accuracy", "shortcut", "memory")
    files = {p.stem for p in (Path(ROOT) / "benchmarks" / "studies").glob("*.py")
             if not p.name.startswith("_")}
    assert files == set(REGISTRY)  # every study module is registered, every entry has a module
    for name, study in REGISTRY.items():
        mod = study.module
        assert mod.__name__ == f"benchmarks.studies.{name}"
        assert study.description and study.description == mod.__doc__.strip().splitlines()[0]
        assert f"python -m benchmarks {name}" in mod.__doc__, name  # says how to run it
        assert list(inspect.signature(mod.run).parameters) == ["ctx", "args"], name
        if hasattr(mod, "add_arguments"):  # add_arguments(parser)
            assert len(inspect.signature(mod.add_arguments).parameters) == 1, name
        # its own options do not clash with the shared ones, and parse with no arguments
        study_parser(name, add_shared_options).parse_args([])


def test_list_names_every_study_with_its_description():
    from benchmarks.studies import REGISTRY

    proc = _bench("--list")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == len(REGISTRY)
    for line, (name, study) in zip(lines, REGISTRY.items()):
        assert line.split()[0] == name and study.description in line


def test_shared_options_are_parsed_once_and_study_options_after_the_names(monkeypatch):
    from benchmarks.__main__ import parse

    ctx, studies, _ = parse(["--quick", "newton", "kernels", "--cases", "big", "--out", "x"])
    assert ctx.quick and ctx.root == Path("x") and ctx.suffix == "_quick"
    assert [name for name, _ in studies] == ["newton", "kernels"]
    newton_args = studies[0][1]
    assert newton_args.cases == "big" and not hasattr(newton_args, "quick")
    ctx, studies, _ = parse([])
    assert [name for name, _ in studies] == ["scaling_n", "scaling_d", "sketch", "accuracy",
                                             "shortcut", "memory"]
    assert not ctx.quick and ctx.root.name == "out"
    ctx, studies, _ = parse(["--studies", "scaling_n,memory", "--update"])
    assert [name for name, _ in studies] == ["scaling_n", "memory"]
    assert ctx.root == Path(ROOT) / "benchmarks"
    for bad in (["nope"], ["newton", "--bogus"], ["newton", "kernels", "--bogus", "1"],
                ["--out", "x", "--update"], ["path", "newton"]):
        monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
        with pytest.raises(SystemExit):
            parse(bad)


def test_a_study_runs_through_the_entry_point(tmp_path):
    """A focused study with its own options and a process environment of its own."""
    proc = _bench("sketch_layer", "--part", "errors", "--seeds", "1", "--quick",
                  "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _rows(tmp_path / "results" / "sketch_errors_quick.csv")
    assert "| leverage |" in proc.stdout


def test_no_path_manipulation_under_benchmarks():
    bench = Path(ROOT) / "benchmarks"
    skip = {"out", ".cache", "__pycache__"}
    files = [p for p in bench.rglob("*")
             if p.is_file() and not skip & set(p.relative_to(bench).parts)]
    assert any(p.suffix == ".py" for p in files)
    offenders = [str(p.relative_to(bench)) for p in files if b"sys.path" in p.read_bytes()]
    assert not offenders


def test_dense_k_sweep_credits_merged_runs(tmp_path):
    """``dense --k-sweep``: the runs of several CSVs merged (a later file's runs of a problem and
    solver replace the earlier's), each solver credited with its loosest run within each gap of
    the best objective; the table and the plot written, no run made."""
    cols = ["problem", "C", "solver", "tol", "time_s", "timed_out", "objective", "method",
            "peak_rss_mb", "data_mb", "error"]

    def write(path, rows):
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for r in rows:
                w.writerow(r)

    p = "probe-n1000-p8-K5"
    first, second = tmp_path / "a_runs.csv", tmp_path / "b_runs.csv"
    write(first, [[p, 1.0, "sn:auto", 1e-6, 9.0, False, 100.0, "cg", 50.0, 1.0, ""],
                  [p, 1.0, "lbfgs", 1e-6, 2.0, False, 100.00001, "lbfgs", 40.0, 1.0, ""],
                  [p, 1.0, "lbfgs", 1e-8, 3.0, False, 100.00001, "lbfgs", 40.0, 1.0, ""],
                  [p, 1.0, "lbfgs-f64", 1e-6, 4.0, False, 100.00001, "lbfgs-f64", 45.0, 1.0, ""],
                  [p, 1.0, "lbfgs-f64", 1e-8, 6.0, False, 100.0000001, "lbfgs-f64", 45.0, 1.0,
                   ""]])
    write(second, [[p, 1.0, "sn:auto", 1e-6, 1.0, False, 100.0, "subsampled", 30.0, 1.0, ""]])
    out = tmp_path / "out"
    proc = _bench("dense", "--k-sweep", f"{first},{second}", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {float(r["gap"]): r for r in _rows(out / "results" / "dense_ksweep.csv")}
    assert float(rows[1e-6]["sn:auto_s"]) == 1.0 and rows[1e-6]["auto_method"] == "subsampled"
    assert float(rows[1e-6]["lbfgs_s"]) == 2.0  # gap 1e-7
    assert float(rows[1e-6]["fastest_peer_over_auto"]) == 2.0
    assert rows[1e-8]["lbfgs_s"] == "inf" and float(rows[1e-8]["lbfgs-f64_s"]) == 6.0
    assert (out / "plots" / "dense_ksweep.png").exists()


def test_tol_ladder_never_stops_on_its_own_first_objective():
    """A reference that timed out leaves no objective to judge against: the ladder goes on
    until one of its runs is confirmed by another (it stopped at its loosest run, credited
    with gap 0); a run far better than the ones before is confirmed by the next one too."""
    from benchmarks._common import tol_ladder

    objectives = {1e-4: 10.0 + 1e-3, 1e-6: 10.0 + 1e-9, 1e-8: 10.0}
    run = lambda tol: dict(tol=tol, objective=objectives[tol], timed_out=False)  # noqa: E731
    timed_out = dict(tol=1e-12, objective=float("nan"), timed_out=True)
    runs = tol_ladder(run, (1e-4, 1e-6, 1e-8), [timed_out])
    assert [r["tol"] for r in runs] == [1e-4, 1e-6, 1e-8]
    # with a converged reference the first run within the gap stops the ladder
    ref = dict(tol=1e-12, objective=10.0, timed_out=False)
    assert [r["tol"] for r in tol_ladder(run, (1e-4, 1e-6, 1e-8), [ref])] == [1e-4, 1e-6]


def test_kernel_table_quick_runs_every_kernel(tmp_path):
    """The kernel table calls the kernels' current signatures (it broke once when the
    multinomial state changed) and writes one row per kernel with a finite ratio."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "kernel_table", "--quick",
                           "--repeats", "1", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _rows(tmp_path / "results" / "kernel_table_quick.csv")
    kernels = {r["kernel"] for r in rows}
    assert any(k.startswith("csr_multinomial_hessp") for k in kernels)
    assert any(k.startswith("multinomial loss+grad") for k in kernels)
    assert all(0 < float(r["ratio"]) < float("inf") for r in rows)


def test_lasso_certificate_bounds_the_error_and_closes_at_the_minimiser():
    """The study's independent duality gap: above the objective's distance to a tight
    solution (weak duality) at a loose one, near zero at the tight one, and its
    stationarity the largest relative violation of the optimality conditions."""
    import scipy.sparse as sp

    from benchmarks.studies.l1 import lasso_certificate
    from sketchnewton import SketchedLogisticRegression

    rng = np.random.default_rng(0)
    X = sp.random(400, 60, density=0.2, format="csr", random_state=0)
    y = np.where(X @ rng.standard_normal(60) + 0.3 * rng.standard_normal(400) > 0, 1.0, -1.0)
    fits = {tol: SketchedLogisticRegression(C=2.0, l1_ratio=1.0, fit_intercept=False, tol=tol,
                                            random_state=0).fit(X, y).coef_
            for tol in (1e-3, 1e-11)}
    loose, tight = (lasso_certificate(X, y, 2.0, fits[t]) for t in (1e-3, 1e-11))
    assert loose["gap"] >= loose["objective"] - tight["objective"] > 0
    assert 0 <= tight["gap"] <= 1e-7 * tight["objective"]
    assert tight["stationarity"] < 1e-8 < loose["stationarity"]
    assert tight["support"] == np.count_nonzero(fits[1e-11])
