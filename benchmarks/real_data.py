"""Real data for the benchmarks: the LIBSVM sets in ``data/libsvm/`` and a text corpus built here.

``load_libsvm(name)``
    ``a9a`` (UCI Adult, 48,842 x 123) or ``w8a`` (web pages, 49,749 x 300), read from
    ``data/libsvm/<name>.bz2`` (provenance in ``data/libsvm/README.md``): scipy CSR float64 and
    integer labels in ``{-1, +1}``.

``make_code_corpus(n_docs, n_features, n_classes=8, binary=False, random_state=0)``
    A real, high-dimensional sparse text classification problem made from the Python source
    files installed on this machine (the running interpreter's site-packages and its standard
    library). A document is a window of ``window`` consecutive non-blank lines of one source
    file (default 8; the last, shorter window of a file is kept when it has at least half as
    many lines); its label is the top-level package the file belongs to (``numpy``, ``scipy``,
    ``sklearn``, ...; every file of the standard library is labelled ``stdlib``). The
    ``n_classes`` packages with the most bytes of Python source are the classes (ties by name;
    on this project's environment: stdlib, pandas, scipy, sklearn, numba, numpy, matplotlib,
    dask). Exact duplicate windows are dropped (a window is kept in the first class that has it,
    classes largest first, files in sorted order), then ``n_docs`` windows are drawn
    without replacement by a seeded generator (their order is the draw order, i.e. shuffled).
    ``binary=True`` labels one package (``positive``, default the largest) 1 and the other
    ``n_classes - 1`` packages 0; ``binary=True, n_classes=2`` is two packages against each
    other. Features: token uni- and bi-grams (identifiers, integers and single punctuation
    characters, case kept) hashed by scikit-learn's ``HashingVectorizer`` into ``n_features``
    columns, then tf-idf (``TfidfTransformer``: smooth idf, l2-normalised rows); CSR float64.

    Deterministic for fixed installed packages, ``window``, ``n_features`` and seed (files are
    walked in sorted order). The manifest says what the data is: package versions, files, lines
    and windows per class, n, p, nnz, class counts, and a sha256 of the drawn document list
    (labels and texts, in order), so a result can name the exact data it ran on.

    The tokenisation (the expensive part) is cached in ``benchmarks/.cache/`` (git-ignored),
    keyed by the document-list hash and the vectoriser settings.

How many documents exist depends on the installed packages: ``corpus_size(window)`` tells.
With this project's environment the 8 largest packages hold 2.9 million non-blank lines: 358,759
distinct documents of 8 lines, 703,044 of 4, 913,926 of 3 and 1,273,761 of 2; so 10^6 documents
need windows of 2 lines (short texts, ~31 non-zeros per row against ~92 for 8 lines).

    python -m benchmarks.real_data --sizes                 # windows available per class and window
    python -m benchmarks.real_data --build 10000 100000 --features 65536   # build and time
"""

import bz2
import hashlib
import json
import os
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["LIBSVM", "load_libsvm", "libsvm_raw_bytes", "make_code_corpus", "corpus_size",
           "source_roots", "CACHE_DIR", "TOKEN_PATTERN"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LIBSVM_DIR = ROOT / "data" / "libsvm"
CACHE_DIR = Path(os.environ.get("SKETCHNEWTON_BENCH_CACHE", HERE / ".cache"))

# documented shape, non-zeros, positives and md5 of the raw (uncompressed) text
LIBSVM = {
    "a9a": dict(n=48_842, d=123, nnz=677_323, positives=11_687,
                md5="327d0be955f64f8d4d2edb9b4919358a"),
    "w8a": dict(n=49_749, d=300, nnz=579_586, positives=1_479,
                md5="a0447c58bf2c1c2d2eb1c414f8cca393"),
}

# identifiers, integers, single punctuation characters; case kept (CamelCase vs snake_case)
TOKEN_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[^\sA-Za-z0-9_]"
CORPUS_VERSION = 1  # bump when the document definition changes (invalidates caches)


# ----------------------------------------------------------------------------- LIBSVM

def _as_csr(X):
    """CSR float64 with sorted indices; 32-bit indices when they fit (LIBLINEAR needs them)."""
    X = sp.csr_matrix(X, dtype=np.float64)
    if X.nnz < 2**31 - 1 and max(X.shape) < 2**31 - 1:
        X = sp.csr_matrix((X.data, X.indices.astype(np.int32), X.indptr.astype(np.int32)),
                          shape=X.shape)
    X.sort_indices()
    return X


def libsvm_raw_bytes(name):
    """The raw svmlight text of ``name`` (decompressed)."""
    if name not in LIBSVM:
        raise ValueError(f"unknown LIBSVM set {name!r}; choose from {sorted(LIBSVM)}")
    path = LIBSVM_DIR / f"{name}.bz2"
    if path.exists():
        with bz2.open(path, "rb") as fh:
            return fh.read()
    return (LIBSVM_DIR / name).read_bytes()


def load_libsvm(name):
    """``(X, y)``: CSR float64 of the documented shape, int labels in ``{-1, +1}``."""
    import io

    from sklearn.datasets import load_svmlight_file

    info = LIBSVM[name] if name in LIBSVM else None
    raw = libsvm_raw_bytes(name)
    X, y = load_svmlight_file(io.BytesIO(raw), n_features=info["d"], dtype=np.float64)
    return _as_csr(X), y.astype(np.int64)


# ----------------------------------------------------------------------------- code corpus

def source_roots():
    """``[(kind, path)]``: the interpreter's site-packages directories and its standard library."""
    paths = sysconfig.get_paths()
    roots = []
    for key in ("purelib", "platlib"):
        p = os.path.realpath(paths[key])
        if ("site-packages", p) not in roots:
            roots.append(("site-packages", p))
    roots.append(("stdlib", os.path.realpath(paths["stdlib"])))
    return roots


def _skip_dir(name):
    return (name == "__pycache__" or name.endswith((".dist-info", ".egg-info", ".libs", ".data"))
            or name == "site-packages" or name.startswith("."))


def _source_files():
    """Sorted ``[(label, relpath, abspath, size)]`` of every ``.py`` file under the roots."""
    out = []
    for kind, root in source_roots():
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not _skip_dir(d))
            rel_dir = os.path.relpath(dirpath, root)
            if kind == "site-packages":
                if rel_dir == ".":
                    continue  # top-level single-file modules have no package
                label = rel_dir.split(os.sep)[0]
            else:
                label = "stdlib"
            for f in sorted(filenames):
                if f.endswith(".py"):
                    path = os.path.join(dirpath, f)
                    try:
                        size = os.path.getsize(path)
                    except OSError:  # dangling link
                        continue
                    out.append((label, os.path.normpath(os.path.join(kind, rel_dir, f)), path, size))
    out.sort(key=lambda t: (t[0], t[1]))
    return out


def _windows(text, window):
    lines = [ln for ln in (ln.rstrip() for ln in text.splitlines()) if ln]
    min_lines = (window + 1) // 2
    docs = ["\n".join(lines[lo:lo + window]) for lo in range(0, len(lines), window)]
    if docs and len(lines) % window and len(lines) % window < min_lines:
        docs.pop()  # a last window shorter than half the others
    return docs, len(lines)


_FILES_MEMO = {}
_POOL_MEMO = {}


def _files_by_label():
    """``{label: [(relpath, abspath, size)]}`` and ``{label: total bytes}`` (memoised)."""
    if "files" not in _FILES_MEMO:
        by_label = {}
        for label, rel, path, size in _source_files():
            by_label.setdefault(label, []).append((rel, path, size))
        _FILES_MEMO["files"] = by_label
    return _FILES_MEMO["files"]


def _rank(files):
    """Labels by bytes of Python source, largest first (ties by name)."""
    return sorted(files, key=lambda lab: (-sum(f[2] for f in files[lab]), lab))


def _package_pool(label, window):
    """Every window of ``label``'s source files in walk order, with counts (memoised)."""
    files = _files_by_label()[label]
    fp = hashlib.sha256()
    for rel, _, size in files:
        fp.update(f"{rel}\0{size}\n".encode())
    key = (label, window, fp.hexdigest())
    if key not in _POOL_MEMO:
        docs, n_lines, n_bytes = [], 0, 0
        for rel, path, size in files:
            with open(path, "rb") as fh:
                text = fh.read().decode("utf-8", errors="replace")
            d, n = _windows(text, window)
            docs.extend(d)
            n_lines += n
            n_bytes += size
        _POOL_MEMO[key] = dict(docs=docs, files=len(files), lines=n_lines, bytes=n_bytes,
                               file_hash=fp.hexdigest())
    return _POOL_MEMO[key]


def _versions(labels):
    import importlib.metadata as md

    try:
        dists = md.packages_distributions()
    except Exception:  # pragma: no cover - old importlib.metadata
        dists = {}
    out = {}
    for lab in labels:
        if lab == "stdlib":
            out[lab] = f"python {sys.version.split()[0]}"
            continue
        names = sorted(set(dists.get(lab, [])))
        vers = []
        for name in names:
            try:
                vers.append(f"{name} {md.version(name)}")
            except md.PackageNotFoundError:
                pass
        out[lab] = "; ".join(vers) if vers else "unknown"
    return out


def _selected_pool(window, n_classes, packages):
    files = _files_by_label()
    labels = list(packages) if packages is not None else _rank(files)[:n_classes]
    missing = [lab for lab in labels if lab not in files]
    if missing:
        raise ValueError(f"no source files for {missing}; available: {_rank(files)}")
    by_label = {lab: _package_pool(lab, window) for lab in labels}
    docs, lab_idx, seen = [], [], set()
    dropped = {}
    for k, lab in enumerate(labels):
        kept = 0
        for d in by_label[lab]["docs"]:
            if d in seen:
                continue
            seen.add(d)
            docs.append(d)
            kept += 1
        lab_idx.append(np.full(kept, k, dtype=np.int64))
        dropped[lab] = len(by_label[lab]["docs"]) - kept
    return by_label, labels, docs, np.concatenate(lab_idx), dropped


def corpus_size(window=8, n_classes=8, packages=None):
    """``{label: distinct windows}`` of the classes ``make_code_corpus`` would use, and their sum."""
    _, labels, _, lab, _ = _selected_pool(window, n_classes, packages)
    counts = {lab_: int(c) for lab_, c in zip(labels, np.bincount(lab, minlength=len(labels)))}
    return counts, int(lab.size)


def _doc_hash(texts, labels):
    h = hashlib.sha256()
    for t, y in zip(texts, labels):
        h.update(f"{y}\0".encode())
        h.update(t.encode("utf-8", errors="replace"))
        h.update(b"\0")
    return h.hexdigest()


def _vectorizer(n_features, ngram_range):
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=n_features, token_pattern=TOKEN_PATTERN, lowercase=False,
                             ngram_range=tuple(ngram_range), alternate_sign=False, norm=None,
                             dtype=np.float64)


def make_code_corpus(n_docs, n_features=2**18, n_classes=8, binary=False, random_state=0, *,
                     window=8, positive=None, packages=None, ngram_range=(1, 2), cache=True,
                     cache_dir=None, verbose=False):
    """A real sparse text classification problem from installed Python sources.

    Parameters
    ----------
    n_docs : int
        Documents (rows). At most :func:`corpus_size` ``(window, ...)[1]``.
    n_features : int
        Hashed feature columns (``2**12`` to ``2**20`` are sensible).
    n_classes : int
        Number of packages (the largest by window count), unless ``packages`` names them.
    binary : bool
        ``y = 1`` for ``positive`` (default: the first class, i.e. the largest package), 0 for
        the other packages.
    random_state : int
        Seed of the row draw.
    window : int
        Non-blank lines per document.
    packages : sequence of str or None
        Explicit classes (top-level package names, ``"stdlib"`` for the standard library).
    ngram_range : (int, int)
        Token n-grams hashed.
    cache : bool
        Reuse / store the hashed token counts in ``cache_dir`` (default ``benchmarks/.cache``).

    Returns
    -------
    X : scipy.sparse.csr_matrix, float64, shape (n_docs, n_features)
    y : ndarray of int, shape (n_docs,)
        Class index into ``manifest["classes"]`` (multinomial) or 0/1 (binary).
    manifest : dict
        JSON-serialisable description of the data (see module docstring).
    """
    t0 = time.perf_counter()
    n_docs = int(n_docs)
    by_label, labels, docs, lab, dropped = _selected_pool(window, n_classes, packages)
    n_avail = len(docs)
    if n_docs > n_avail:
        raise ValueError(
            f"only {n_avail} distinct documents of {window} lines in the {len(labels)} classes "
            f"{labels}; ask for fewer documents or use a smaller window")
    rng = np.random.default_rng(random_state)
    idx = rng.choice(n_avail, size=n_docs, replace=False)
    texts = [docs[i] for i in idx]
    lab_sel = lab[idx]
    if binary:
        pos = labels[0] if positive is None else positive
        if pos not in labels:
            raise ValueError(f"positive={pos!r} is not one of the classes {labels}")
        y = (lab_sel == labels.index(pos)).astype(np.int64)
        class_names = [f"not {pos}", pos]
    else:
        y = lab_sel
        class_names = list(labels)
    doc_hash = _doc_hash(texts, lab_sel)
    t_docs = time.perf_counter() - t0

    import sklearn
    from sklearn.feature_extraction.text import TfidfTransformer

    vec_key = dict(version=CORPUS_VERSION, doc_hash=doc_hash, n_features=int(n_features),
                   ngram_range=list(ngram_range), token_pattern=TOKEN_PATTERN, lowercase=False,
                   sklearn=sklearn.__version__)
    key = hashlib.sha256(json.dumps(vec_key, sort_keys=True).encode()).hexdigest()[:24]
    cdir = Path(cache_dir) if cache_dir is not None else CACHE_DIR
    cpath = cdir / f"counts-{key}.npz"
    t1 = time.perf_counter()
    counts = None
    if cache and cpath.exists():
        try:
            counts = sp.load_npz(cpath).tocsr()
            cache_hit = True
        except Exception:  # a half-written file from a killed run: rebuild it
            counts = None
    if counts is None:
        cache_hit = False
        counts = _vectorizer(n_features, ngram_range).transform(texts).tocsr()
        counts.sum_duplicates()
        if cache:
            cdir.mkdir(parents=True, exist_ok=True)
            tmp = cdir / f"counts-{key}.tmp.{os.getpid()}.npz"
            store = sp.csr_matrix((counts.data.astype(np.float32), counts.indices, counts.indptr),
                                  shape=counts.shape)
            sp.save_npz(tmp, store, compressed=False)
            os.replace(tmp, cpath)
    t_tok = time.perf_counter() - t1
    counts = sp.csr_matrix((counts.data.astype(np.float64), counts.indices, counts.indptr),
                           shape=counts.shape)
    X = _as_csr(TfidfTransformer(norm="l2", use_idf=True, smooth_idf=True).fit_transform(counts))
    versions = _versions(labels)
    class_counts = np.bincount(y, minlength=len(class_names))
    manifest = dict(
        name=f"code-{'bin' if binary else f'K{len(labels)}'}-n{n_docs}-p{n_features}-w{window}",
        generator="benchmarks.real_data.make_code_corpus",
        params=dict(n_docs=n_docs, n_features=int(n_features), n_classes=len(labels),
                    binary=bool(binary), positive=(class_names[1] if binary else None),
                    random_state=random_state, window=window, ngram_range=list(ngram_range),
                    token_pattern=TOKEN_PATTERN, lowercase=False, features="HashingVectorizer"
                    "(alternate_sign=False, norm=None) + TfidfTransformer(norm='l2', smooth_idf=True)",
                    corpus_version=CORPUS_VERSION),
        python=sys.version.split()[0], sklearn=sklearn.__version__, numpy=np.__version__,
        roots=[f"{kind}: {path}" for kind, path in source_roots()],
        classes=class_names, packages=labels,
        package_versions=versions,
        files_per_package={lab_: by_label[lab_]["files"] for lab_ in labels},
        lines_per_package={lab_: by_label[lab_]["lines"] for lab_ in labels},
        windows_per_package={lab_: len(by_label[lab_]["docs"]) for lab_ in labels},
        duplicates_dropped=dropped,
        file_list_sha256={lab_: by_label[lab_]["file_hash"] for lab_ in labels},
        documents_available=n_avail,
        n=int(X.shape[0]), p=int(X.shape[1]), nnz=int(X.nnz),
        nnz_per_row=float(X.nnz / max(X.shape[0], 1)),
        empty_columns=int(X.shape[1] - np.unique(X.indices).size),
        mean_chars_per_doc=float(np.mean([len(t) for t in texts])) if texts else 0.0,
        class_counts={c: int(k) for c, k in zip(class_names, class_counts)},
        documents_sha256=doc_hash,
        cache_key=key, cache_hit=cache_hit,
        seconds=dict(documents=round(t_docs, 3), tokenise=round(t_tok, 3),
                     total=round(time.perf_counter() - t0, 3)),
    )
    if verbose:
        print(json.dumps(manifest, indent=1))
    return X, y, manifest


def _main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks.real_data", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", action="store_true", help="documents available per window size")
    ap.add_argument("--windows", default="1,2,3,4,8,16,32")
    ap.add_argument("--build", type=int, nargs="*", help="build corpora of these sizes and time them")
    ap.add_argument("--features", type=int, default=2**18)
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--window", type=int, default=8)
    ap.add_argument("--binary", action="store_true")
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args(argv)
    if args.sizes:
        for w in [int(s) for s in args.windows.split(",")]:
            t0 = time.perf_counter()
            counts, total = corpus_size(w, args.classes)
            print(f"window {w:2d}: {total:>9,d} distinct documents in {args.classes} classes "
                  f"({time.perf_counter() - t0:.1f} s): "
                  + ", ".join(f"{k} {v:,d}" for k, v in counts.items()), flush=True)
    for n in args.build or []:
        t0 = time.perf_counter()
        X, y, man = make_code_corpus(n, args.features, args.classes, args.binary,
                                     window=args.window, cache=not args.no_cache)
        print(f"n_docs {n:,d} p {args.features} window {args.window}: built in "
              f"{time.perf_counter() - t0:.1f} s (documents {man['seconds']['documents']:.1f} s, "
              f"tokenise {man['seconds']['tokenise']:.1f} s, cache hit {man['cache_hit']}); "
              f"nnz {man['nnz']:,d} ({man['nnz_per_row']:.1f} per row), "
              f"class counts {man['class_counts']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
