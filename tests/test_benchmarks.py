"""The benchmark suite's quick mode runs end to end and writes what it claims."""

import csv
import os
import subprocess
import sys

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
