"""``sketchnewton fit``: L2-regularised logistic regression from labelled files."""

import os
import sys
import time

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import log_loss

from .._io import (
    SVMLIGHT_EXTENSIONS,
    check_problem_size,
    load_matrix,
    load_svmlight_labeled,
    load_vector,
    write_atomically,
)
from .._outcome import Reason
from ..estimators import SketchedLogisticRegression
from ..exceptions import InputError
from ._options import UsageError, _input_error
from ._output import _check_outputs, _json_writer, _jsonable
from ._run import _check_finite, _nnz, _numerical_error, _run_collecting, _warn


def _fmt_label(v):
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def _fmt_classes(classes, few=6):
    labels = [_fmt_label(c) for c in classes[:few]]
    if len(classes) > few:
        labels[-1:] = ["...", _fmt_label(classes[-1])]
    return ", ".join(labels)


def _check_labels(y, name, path):
    """Class labels: finite whole numbers; returns them unchanged."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        _check_finite(y, name, path)
        bad = np.flatnonzero(y != np.round(y))
        if bad.size:
            raise _input_error(
                f"{name} in {path!r} are not class labels: {bad.size:,} are not whole numbers "
                f"(e.g. {_fmt_classes(y[bad[:3]], 3)}); for regression targets use "
                f"'sketchnewton solve'")
    return y


def _load_fit_data(args):
    """``(X, y, X_test, y_test)`` (test None without --test)."""
    def kind(path):
        return "svmlight" if os.path.splitext(path)[1].lower() in SVMLIGHT_EXTENSIONS else "dense"

    train_kind = kind(args.train)
    train_format = "svmlight/libsvm text" if train_kind == "svmlight" else "a matrix file"
    if args.test is not None and kind(args.test) != train_kind:
        raise UsageError(f"argument --test: {args.test!r} must be in the same format as TRAIN "
                         f"({train_format})")
    if args.test_labels is not None and args.test is None:
        raise UsageError("argument --test-labels: needs --test")
    if train_kind == "svmlight":
        for option, value in (("--labels", args.labels), ("--test-labels", args.test_labels)):
            if value is not None:
                raise UsageError(f"argument {option}: svmlight/libsvm files carry their labels "
                                 f"(first column); {option} is for a matrix-file X")
        if args.n_features is not None:
            check_problem_size(1, args.n_features + 1, 0, "X")
        paths = [args.train] + ([args.test] if args.test is not None else [])
        names = ["TRAIN", "TEST"][:len(paths)]
        pairs = load_svmlight_labeled(paths, names, zero_based=args.zero_based,
                                      n_features=args.n_features)
        X, y = pairs[0]
        X_test, y_test = pairs[1] if len(pairs) > 1 else (None, None)
        return X, y, X_test, y_test
    if args.labels is None:
        raise UsageError("argument --labels: required when TRAIN is a matrix file "
                         "(svmlight/libsvm files carry their labels)")
    if args.test is not None and args.test_labels is None:
        raise UsageError("argument --test-labels: required when --test is a matrix file")
    X = load_matrix(args.train, "TRAIN")
    y = load_vector(args.labels, "labels", length=(X.shape[0], f"TRAIN in {args.train!r} has "
                                                                f"{X.shape[0]} rows"))
    if args.n_features is not None and X.shape[1] != args.n_features:
        raise _input_error(f"TRAIN in {args.train!r} has {X.shape[1]} columns but --n-features "
                           f"is {args.n_features}")
    X_test = y_test = None
    if args.test is not None:
        X_test = load_matrix(args.test, "TEST")
        if X_test.shape[1] != X.shape[1]:
            raise _input_error(f"TEST in {args.test!r} has {X_test.shape[1]} columns but TRAIN "
                               f"has {X.shape[1]}")
        y_test = load_vector(args.test_labels, "test labels",
                             length=(X_test.shape[0], f"TEST in {args.test!r} has "
                                                      f"{X_test.shape[0]} rows"))
    return X, y, X_test, y_test


def _fit(args):
    inputs = [(args.train, "TRAIN"), (args.test, "TEST"), (args.labels, "labels"),
              (args.test_labels, "test labels")]
    _check_outputs([(args.model, "--model", (".npz",)), (args.json, "--json", (".json",))],
                   inputs)
    X, y, X_test, y_test = _load_fit_data(args)
    n, d = X.shape
    nnz = _nnz(X)
    if n == 0 or d == 0:
        raise _input_error(f"TRAIN in {args.train!r} is empty (shape {X.shape})")
    _check_finite(X.data if sp.issparse(X) else X, "TRAIN", args.train)
    label_source = args.labels or args.train
    y = _check_labels(y, "labels", label_source)
    classes = np.unique(y)
    if classes.size < 2:
        raise _input_error(f"labels in {label_source!r} hold a single class "
                           f"({_fmt_label(classes[0])}); a classifier needs at least 2")
    K = classes.size
    fit_intercept = not args.no_intercept
    params = (d + fit_intercept) * (1 if K == 2 else K)
    # (a multinomial fit holds K n-vectors where a binary one holds one)
    check_problem_size(n * (1 if K == 2 else K), params, nnz, "TRAIN")
    if X_test is not None:
        _check_finite(X_test.data if sp.issparse(X_test) else X_test, "TEST", args.test)
        test_source = args.test_labels or args.test
        y_test = _check_labels(y_test, "test labels", test_source)
        unseen = np.setdiff1d(np.unique(y_test), classes)
        if unseen.size:
            raise _input_error(f"test labels in {test_source!r} include classes absent from "
                               f"the training data: {_fmt_classes(unseen, 3)}")
    kind = f"sparse, {nnz:,} non-zeros" if sp.issparse(X) else "dense"
    print(f"sketchnewton fit: X {n:,} x {d:,} ({kind}) from {args.train}; {K} classes: "
          f"{_fmt_classes(classes)}", flush=True)
    est = SketchedLogisticRegression(C=args.C, fit_intercept=fit_intercept, tol=args.tol,
                                     max_iter=args.max_iter, method=args.method,
                                     random_state=args.seed, verbose=1 if args.verbose else 0)
    t0 = time.perf_counter()
    try:
        _, texts = _run_collecting(lambda: est.fit(X, y), {"X": X})
    except InputError:
        raise
    except ValueError as exc:  # scikit-learn's validation (LinAlgError is handled above)
        raise _input_error(f"cannot fit: {exc}") from None
    seconds = time.perf_counter() - t0
    res = est.result_
    if not (np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))):
        raise _numerical_error(FloatingPointError("the coefficients are not finite"), [],
                               {"X": X})
    converged = bool(getattr(res, "success", True)) and not texts
    method, nit = getattr(res, "method", args.method), int(est.n_iter_[0])
    state = "converged" if converged else f"NOT converged ({getattr(res, 'message', '')})"
    print(f"method {method}: {nit} iterations, {seconds:.2f} s; {state}")
    summary = {"classes": classes, "n": n, "d": d, "nnz": int(nnz), "method": method,
               "n_iter": nit, "converged": converged, "message": getattr(res, "message", None),
               "time": seconds, "train_accuracy": float(est.score(X, y))}
    print(f"training accuracy {summary['train_accuracy']:.4f} on {n:,} samples")
    if X_test is not None:
        acc = float(est.score(X_test, y_test))
        loss = float(log_loss(y_test, est.predict_proba(X_test), labels=est.classes_))
        summary["test"] = {"n": int(X_test.shape[0]), "accuracy": acc, "log_loss": loss}
        print(f"test accuracy {acc:.4f}, log-loss {loss:.4f} on {X_test.shape[0]:,} samples")
    summary["params"] = {"C": args.C, "fit_intercept": fit_intercept, "tol": args.tol,
                         "max_iter": args.max_iter, "method": args.method, "seed": args.seed}
    summary["input"] = {"train": args.train, "test": args.test, "labels": args.labels,
                        "test_labels": args.test_labels}
    writes = []
    if args.model is not None:
        model = dict(classes=np.asarray(est.classes_), coef=np.asarray(est.coef_, np.float64),
                     intercept=np.asarray(est.intercept_, np.float64), C=np.float64(args.C),
                     fit_intercept=np.bool_(fit_intercept), n_features=np.int64(d))
        writes.append((args.model, lambda f: np.savez(f, **model)))
    if args.json is not None:
        writes.append((args.json, _json_writer(_jsonable(summary))))
    write_atomically(writes)
    if args.model is not None:
        print(f"model written to {args.model}")
    if args.json is not None:
        print(f"summary written to {args.json}")
    sys.stdout.flush()
    if not converged:
        if getattr(res, "reason", None) == Reason.MAX_ITER.value:
            hint = f"increase --max-iter (now {args.max_iter})"
        else:
            hint = "try --method exact, a larger --tol, a smaller --C, or scale the features"
        _warn(texts or [f"the fit did not converge: {getattr(res, 'message', '')}"], hint)
    return 0 if converged else 1
