"""Safe loading and atomic writing (``sketchnewton._io``), in-process.

Every malformed file must give a one-line :class:`LoadError` naming the file,
sizes must be checked before anything large is allocated, only regular files
are read, and outputs are written all-or-nothing.
"""

import errno
import os
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file

from sketchnewton import _io
from sketchnewton.exceptions import InputError

from conftest import npy_bytes

GB = 1 << 30




@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    return sp.random(30, 6, density=0.3, random_state=rng, format="csr")




def _zip_npz(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name + ".npy", data)


def _raw_npz(path, fmt, shape, **arrays):
    members = {"format": npy_bytes(np.bytes_(fmt.encode())),
               "shape": npy_bytes(np.array(shape, dtype=np.int64))}
    members.update({k: npy_bytes(np.asarray(v)) for k, v in arrays.items()})
    _zip_npz(path, members)


def _load_error(path, *, vector=False, **kwargs):
    with pytest.raises(_io.LoadError) as info:
        (_io.load_vector if vector else _io.load_matrix)(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert os.fspath(path) in message, message
    return message


# ----------------------------------------------------------------------------
# item 2: malformed headers
# ----------------------------------------------------------------------------

def _unterminated_header_npy(path):
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2"
    header += b" " * (118 - len(header)) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 32)


def test_npy_unterminated_header_is_a_load_error(tmp_path):
    _unterminated_header_npy(tmp_path / "A.npy")
    assert "invalid .npy header" in _load_error(tmp_path / "A.npy")
    _unterminated_header_npy(tmp_path / "b.npy")
    assert "invalid .npy header" in _load_error(tmp_path / "b.npy", vector=True)
    # the same header as a member of a .npz
    _zip_npz(tmp_path / "A.npz", {"format": npy_bytes(np.bytes_(b"csr")),
                                  "shape": (tmp_path / "A.npy").read_bytes(),
                                  "data": npy_bytes(np.ones(1)),
                                  "indices": npy_bytes(np.zeros(1, np.int32)),
                                  "indptr": npy_bytes(np.array([0, 1, 1], np.int32))})
    assert "invalid .npy header" in _load_error(tmp_path / "A.npz")


def test_npy_negative_shape_is_refused(tmp_path):
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (-2, 3), }"
    header += b" " * (118 - len(header)) + b"\n"
    (tmp_path / "A.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header))
                                     + header + b"\0" * 64)
    assert "negative" in _load_error(tmp_path / "A.npy")


def _valid_files(d, A):
    sp.save_npz(d / "csr.npz", A)
    sp.save_npz(d / "csc.npz", A.tocsc(), compressed=False)
    sp.save_npz(d / "coo.npz", A.tocoo())
    sp.save_npz(d / "dia.npz", sp.dia_matrix(A))
    np.save(d / "dense.npy", A.toarray())
    scipy.io.mmwrite(d / "A.mtx", A)
    dump_svmlight_file(A, np.zeros(A.shape[0]), str(d / "A.svm"))
    np.savetxt(d / "A.csv", A.toarray(), delimiter=",")
    return ["csr.npz", "csc.npz", "coo.npz", "dia.npz", "dense.npy", "A.mtx", "A.svm", "A.csv"]


def test_fuzzed_files_give_load_errors_only(tmp_path, small):
    """Corrupt bytes of valid files of every format: each load succeeds or raises LoadError."""
    rng = np.random.default_rng(1)
    names = _valid_files(tmp_path, small)
    outcomes = {"ok": 0, "LoadError": 0}
    for name in names:
        original = (tmp_path / name).read_bytes()
        for trial in range(40):
            data = bytearray(original)
            kind = trial % 4
            if kind == 0:  # flip a few bytes
                for pos in rng.integers(0, len(data), size=3):
                    data[pos] = int(rng.integers(0, 256))
            elif kind == 1:  # truncate
                data = data[:int(rng.integers(1, len(data)))]
            elif kind == 2:  # corrupt the first 200 bytes (headers)
                pos = int(rng.integers(0, min(200, len(data))))
                data[pos] = int(rng.integers(0, 256))
            else:  # a run of digits or quotes in the header
                pos = int(rng.integers(0, min(150, len(data))))
                data[pos:pos + 3] = b"9'("
            path = tmp_path / f"fuzz{os.path.splitext(name)[1]}"
            path.write_bytes(bytes(data))
            try:
                _io.load_matrix(path)
                outcomes["ok"] += 1
            except _io.LoadError as exc:
                assert "\n" not in str(exc) and str(path) in str(exc), str(exc)
                assert len(str(exc)) < 700, str(exc)
                outcomes["LoadError"] += 1
    assert outcomes["LoadError"] > 50  # the corruption did reach the parsers


# ----------------------------------------------------------------------------
# item 3: non-regular files
# ----------------------------------------------------------------------------

def test_fifo_and_devices_are_refused_up_front(tmp_path, alarm):
    fifo = tmp_path / "A.npy"
    os.mkfifo(fifo)
    assert "is a FIFO (named pipe)" in _load_error(fifo)
    os.mkfifo(tmp_path / "b.txt")
    assert "is a FIFO (named pipe)" in _load_error(tmp_path / "b.txt", vector=True)
    os.mkfifo(tmp_path / "A.svm")
    with pytest.raises(_io.LoadError, match="is a FIFO"):
        _io.load_svmlight_labeled([tmp_path / "A.svm"], ["TRAIN"])
    (tmp_path / "zero.npy").symlink_to("/dev/zero")  # a device: endless data
    assert "is a device" in _load_error(tmp_path / "zero.npy")


# ----------------------------------------------------------------------------
# item 6: declared sizes checked before allocation
# ----------------------------------------------------------------------------

def _peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("kind", ["coo", "dia", "csc", "mtx"])
def test_huge_declared_shape_is_refused_before_allocation(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(_io._files, "available_memory", lambda: 2 * GB)
    rows = 300_000_000
    if kind == "coo":
        path = tmp_path / "A.npz"
        _raw_npz(path, "coo", (rows, 5), data=np.ones(2), row=np.array([0, rows - 1]),
                 col=np.array([0, 4]))
    elif kind == "dia":
        path = tmp_path / "A.npz"
        _raw_npz(path, "dia", (rows, 5), data=np.ones((1, 5)), offsets=np.array([0]))
    elif kind == "csc":
        path = tmp_path / "A.npz"
        _raw_npz(path, "csc", (rows, 2), data=np.ones(1), indices=np.array([7], np.int32),
                 indptr=np.array([0, 1, 1], np.int32))
    else:
        path = tmp_path / "A.mtx"
        path.write_text("%%MatrixMarket matrix coordinate real general\n% a comment\n"
                        "1000000000000 5 1\n1 1 1.0\n")
    assert os.path.getsize(path) < 4096

    def load():
        with pytest.raises(_io.LoadError, match="would need"):
            _io.load_matrix(path)
    assert _peak_bytes(load) < 50 * (1 << 20)


def test_declared_sizes_must_match_the_file(tmp_path):
    # DIA: data rows must match the offsets
    _raw_npz(tmp_path / "dia.npz", "dia", (4, 4), data=np.ones((2, 4)), offsets=np.array([0]))
    assert "2 diagonal offsets" not in _load_error(tmp_path / "dia.npz")
    assert "1 diagonal offsets" in _load_error(tmp_path / "dia.npz")
    # CSR: indptr must have n + 1 entries
    _raw_npz(tmp_path / "csr.npz", "csr", (5, 3), data=np.ones(1), indices=np.zeros(1, np.int32),
             indptr=np.array([0, 1], np.int32))
    assert "indptr" in _load_error(tmp_path / "csr.npz")
    # a member whose header announces more data than the archive holds
    header = npy_bytes(shape=(1000,))
    _zip_npz(tmp_path / "trunc.npz", {"format": npy_bytes(np.bytes_(b"coo")),
                                      "shape": npy_bytes(np.array([3, 3])),
                                      "data": header + b"\0" * 16,
                                      "row": npy_bytes(np.zeros(1000, np.int64)),
                                      "col": npy_bytes(np.zeros(1000, np.int64))})
    assert "truncated" in _load_error(tmp_path / "trunc.npz")
    # MatrixMarket: more entries declared than the file can hold, and a bad size line
    (tmp_path / "short.mtx").write_text("%%MatrixMarket matrix coordinate real general\n"
                                        "100 100 1000\n1 1 1.0\n")
    assert "truncated" in _load_error(tmp_path / "short.mtx")
    (tmp_path / "size.mtx").write_text("%%MatrixMarket matrix coordinate real general\n"
                                       "3 -3 1\n1 1 1.0\n")
    assert "size line" in _load_error(tmp_path / "size.mtx")
    (tmp_path / "big.mtx").write_text("%%MatrixMarket matrix array real general\n"
                                      "1000000 1000000\n1\n")
    assert "would need" in _load_error(tmp_path / "big.mtx")


def test_vector_length_is_checked_from_the_header(tmp_path):
    np.save(tmp_path / "b.npy", np.ones(7))
    message = _load_error(tmp_path / "b.npy", vector=True, length=(5, "A has 5 rows"))
    assert "has length 7 but A has 5 rows" in message


# ----------------------------------------------------------------------------
# item 7: dtypes, index arrays, short messages
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("arr, dtype_text", [
    (np.array([[1, 2], [3, 4]], dtype="m8[s]"), "timedelta64"),
    (np.array([[1, 2], [3, 4]], dtype="M8[D]"), "datetime64"),
    (np.array([["1", "2"]]), "<U1"),
    (np.array([[b"1", b"2"]]), "S1"),
    (np.array([[1 + 2j]]), "complex"),
    (np.zeros((2, 2), dtype=[("a", "<f8")]), "('a', '<f8')"),
])
def test_non_numeric_dtypes_are_refused(tmp_path, arr, dtype_text):
    np.save(tmp_path / "A.npy", arr)
    message = _load_error(tmp_path / "A.npy")
    assert "dtype" in message and dtype_text in message
    np.save(tmp_path / "b.npy", arr.ravel())
    assert dtype_text in _load_error(tmp_path / "b.npy", vector=True)


def test_object_npy_is_refused(tmp_path):
    np.save(tmp_path / "A.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    assert "refusing to unpickle" in _load_error(tmp_path / "A.npy")


def test_npz_index_arrays_are_validated(tmp_path, small):
    A = small
    cases = {
        "float indices": dict(data=A.data, indices=A.indices.astype(np.float64),
                              indptr=A.indptr),
        "float indptr": dict(data=A.data, indices=A.indices, indptr=A.indptr + 0.5),
        "negative": dict(data=A.data, indices=np.where(np.arange(A.nnz) == 3, -1, A.indices),
                         indptr=A.indptr),
        "out of range": dict(data=A.data, indices=A.indices + 100, indptr=A.indptr),
        "decreasing": dict(data=A.data, indices=A.indices,
                           indptr=np.where(np.arange(A.shape[0] + 1) == 5, A.indptr[6] + 1,
                                           A.indptr)),
    }
    expect = {"float indices": "must be integers", "float indptr": "must be integers",
              "negative": "out of range", "out of range": "out of range",
              "decreasing": "decreases"}
    for case, arrays in cases.items():
        path = tmp_path / f"{case.replace(' ', '_')}.npz"
        _raw_npz(path, "csr", A.shape, **arrays)
        message = _load_error(path)
        assert expect[case] in message, (case, message)
        assert len(message) < 400, message  # never the whole array
    # COO and BSR
    coo = A.tocoo()
    _raw_npz(tmp_path / "coo.npz", "coo", A.shape, data=coo.data, row=coo.row + 1000,
             col=coo.col)
    message = _load_error(tmp_path / "coo.npz")
    assert "row indices out of range" in message and "..." in message and len(message) < 400
    _raw_npz(tmp_path / "coo_f.npz", "coo", A.shape, data=coo.data, row=coo.row * 1.0,
             col=coo.col)
    assert "must be integers" in _load_error(tmp_path / "coo_f.npz")
    _raw_npz(tmp_path / "dia.npz", "dia", (4, 4), data=np.ones((2, 4)), offsets=np.array([1, 1]))
    assert "duplicate" in _load_error(tmp_path / "dia.npz")


def test_valid_npz_formats_round_trip(tmp_path, small):
    dense = small.toarray()
    sp.save_npz(tmp_path / "bsr.npz", sp.bsr_matrix(np.kron(dense, np.ones((2, 1))),
                                                    blocksize=(2, 3)))
    B = _io.load_matrix(tmp_path / "bsr.npz")
    np.testing.assert_array_equal(B.toarray(), np.kron(dense, np.ones((2, 1))))
    sp.save_npz(tmp_path / "dia.npz", sp.dia_matrix(small))
    np.testing.assert_array_equal(_io.load_matrix(tmp_path / "dia.npz").toarray(), dense)
    sp.save_npz(tmp_path / "arr.npz", sp.coo_array(small))  # coords member
    np.testing.assert_array_equal(_io.load_matrix(tmp_path / "arr.npz").toarray(), dense)
    # offsets far outside the matrix are harmless
    _raw_npz(tmp_path / "far.npz", "dia", (3, 3), data=np.ones((2, 3)),
             offsets=np.array([0, 2**62]))
    np.testing.assert_array_equal(_io.load_matrix(tmp_path / "far.npz").toarray(), np.eye(3))


# ----------------------------------------------------------------------------
# item 10: CSV matrices
# ----------------------------------------------------------------------------

def test_csv_matrix(tmp_path):
    (tmp_path / "A.csv").write_text("# a comment\n1, 2.5, -3e2\n\n4,5,6\n")
    np.testing.assert_array_equal(_io.load_matrix(tmp_path / "A.csv"),
                                  [[1, 2.5, -300], [4, 5, 6]])
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5,6\n7,8\n")
    message = _load_error(tmp_path / "ragged.csv")
    assert "line 3 has 2 values but line 1 has 3" in message
    (tmp_path / "word.csv").write_text("1,2\n3,4\n5,abc\n")
    assert "line 3, field 2: 'abc' is not a number" in _load_error(tmp_path / "word.csv")
    (tmp_path / "header.csv").write_text("x1,x2\n1,2\n")
    assert "line 1, field 1: 'x1'" in _load_error(tmp_path / "header.csv")
    (tmp_path / "empty.csv").write_text("\n\n")
    assert "empty" in _load_error(tmp_path / "empty.csv")


def test_text_vector_errors_name_the_line(tmp_path):
    (tmp_path / "b.txt").write_text("1\n2\nabc\n")
    message = _load_error(tmp_path / "b.txt", vector=True)
    assert "one number per line" in message and "line 3" in message
    (tmp_path / "b2.txt").write_text("1\n2 3\n")
    assert "line 2 has 2 numbers" in _load_error(tmp_path / "b2.txt", vector=True)


# ----------------------------------------------------------------------------
# item 12: svmlight files with labels, a common width
# ----------------------------------------------------------------------------

def test_svmlight_labeled_common_width(tmp_path):
    (tmp_path / "train.svm").write_text("1 1:1 3:2\n-1 2:1\n")
    (tmp_path / "test.svm").write_text("1 5:1\n")
    (X, y), (Xt, yt) = _io.load_svmlight_labeled([tmp_path / "train.svm", tmp_path / "test.svm"],
                                                 ["TRAIN", "TEST"])
    assert X.shape == (2, 5) and Xt.shape == (1, 5)  # one-based: index 5 is column 4
    np.testing.assert_array_equal(y, [1, -1])
    (X, _), (Xt, _) = _io.load_svmlight_labeled(
        [tmp_path / "train.svm", tmp_path / "test.svm"], ["TRAIN", "TEST"], n_features=8)
    assert X.shape[1] == Xt.shape[1] == 8
    with pytest.raises(_io.LoadError, match="n_features was set to 3"):
        _io.load_svmlight_labeled([tmp_path / "train.svm", tmp_path / "test.svm"],
                                  ["TRAIN", "TEST"], n_features=3)


# ----------------------------------------------------------------------------
# item 5: atomic writes
# ----------------------------------------------------------------------------

def test_write_atomically_all_or_nothing(tmp_path, monkeypatch):
    (tmp_path / "old.json").write_text("old\n")
    real_fsync = os.fsync
    calls = []

    def disk_full_on_second(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", disk_full_on_second)
    with pytest.raises(_io.OutputError) as info:
        _io.write_atomically([(tmp_path / "x.npy", lambda f: np.save(f, np.ones(3))),
                              (tmp_path / "old.json", lambda f: f.write(b"new\n"))])
    assert str(tmp_path / "old.json") in str(info.value)
    assert "No space left on device" in str(info.value)
    assert isinstance(info.value, InputError)
    # nothing was replaced, and no temporary file is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]
    assert (tmp_path / "old.json").read_text() == "old\n"
    monkeypatch.setattr(os, "fsync", real_fsync)
    _io.write_atomically([(tmp_path / "x.npy", lambda f: np.save(f, np.ones(3))),
                          (tmp_path / "old.json", lambda f: f.write(b"new\n"))])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json", "x.npy"]
    assert (tmp_path / "old.json").read_text() == "new\n"


def test_write_atomically_follows_symlinks_and_keeps_mode(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("0\n")
    os.chmod(target, 0o640)
    (tmp_path / "link.txt").symlink_to(target)
    _io.save_vector(tmp_path / "link.txt", np.array([1.5, 2.0]))
    assert (tmp_path / "link.txt").is_symlink()
    np.testing.assert_array_equal(np.loadtxt(target), [1.5, 2.0])
    assert os.stat(target).st_mode & 0o777 == 0o640


def test_write_error_names_the_file(tmp_path):
    def boom(f):
        raise OSError(errno.EIO, "Input/output error")
    with pytest.raises(_io.OutputError, match="cannot write .*out.npy.*Input/output error"):
        _io.write_atomically([(tmp_path / "out.npy", boom)])
    assert list(tmp_path.iterdir()) == []


def test_matrix_market_inputs_that_crash_scipy(tmp_path):
    """scipy's MatrixMarket reader segfaults on a NUL byte and on some unterminated last lines.

    Run in a subprocess, so that a crash fails this test instead of killing pytest.
    """
    import subprocess
    import sys
    from pathlib import Path

    banner = b"%%MatrixMarket matrix coordinate real general\n2 2 1\n"
    cases = {"nul": banner + b"1 1 1.0\x00\n", "exp": banner + b"1 1 1.0E-",
             "cr": banner + b"1 1 1e5\r", "hex": banner + b"1 1 0x", "ok": banner + b"1 1 2.5"}
    for name, content in cases.items():
        (tmp_path / f"{name}.mtx").write_bytes(content)
    code = (
        "import sys\n"
        "from sketchnewton import _io\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        A = _io.load_matrix(name)\n"
        "        print(name, 'ok', A.toarray()[0, 0])\n"
        "    except _io.LoadError as exc:\n"
        "        print(name, 'LoadError', exc)\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run([sys.executable, "-c", code] + [f"{n}.mtx" for n in cases],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["nul.mtx"].startswith("LoadError") and "NUL byte" in lines["nul.mtx"]
    assert lines["ok.mtx"] == "ok 2.5"
    assert set(lines) == {f"{n}.mtx" for n in cases}
