"""The argument parser of the command line (:func:`build_parser`)."""

from .._version import __version__
from ..api import PRESOLVES
from ..datasets import LINKS
from ._demo import _demo
from ._fit import _fit
from ._options import (
    FIT_METHODS,
    METHODS,
    PROG,
    SKETCHES,
    _float_type,
    _int_type,
    _Parser,
    _zero_based,
)
from ._solve import _solve

EPS_HELP = ("; must be >= 1000 * float64 machine epsilon * max(1, ||x0||) (2.2e-13 when "
            "||x0|| <= 1; x0 = the --x0 file, else 0): smaller errors cannot be certified in "
            "double precision")


def build_parser():
    """The ``sketchnewton`` parser (commands demo, solve, fit); errors raise ``UsageError``."""
    parser = _Parser(
        prog=PROG,
        description="Approximate Newton methods with sketched Hessians for sparse regression "
                    "min_x 1/2 ||phi(Ax)/<phi(Ax),1> - b||^2 + 1/2 ||w * Ax||^2 + lam/2 ||x||^2, "
                    "and logistic regression (fit).",
        epilog="Exit status: 0 converged, 1 not converged, 2 bad input, 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,solve,fit}")

    demo = sub.add_parser("demo", help="solve a generated planted problem and report",
                          description="Generate a planted normalized-regression problem "
                                      "(noiseless, so the planted x is the exact minimiser), "
                                      "solve it with per-iteration progress and print a summary: "
                                      "iterations, passes over A, seconds, error to the planted "
                                      "x and the solver's error bound.")
    demo.add_argument("--n", type=_int_type(2), default=2_000_000,
                      help="rows of A (default %(default)s)")
    demo.add_argument("--d", type=_int_type(1), default=300,
                      help="columns of A (default %(default)s)")
    demo.add_argument("--nnz-per-row", type=_int_type(1), default=None,
                      help="non-zeros per row of A (default 20, or d if smaller)")
    demo.add_argument("--density", type=_float_type(positive=True, maximum=1.0), default=None,
                      help="fraction of non-zeros per row, in (0, 1]; replaces --nnz-per-row "
                           "(default: not set)")
    demo.add_argument("--link", default="resnet", choices=LINKS,
                      help="link phi: resnet exp(z) + z, softmax exp(z), cosh, sinh "
                           "(default %(default)s)")
    demo.add_argument("--z-std", type=_float_type(positive=True), default=1.5,
                      help="standard deviation of z = A x_planted (default %(default)s)")
    demo.add_argument("--noise", type=_float_type(nonnegative=True), default=0.0,
                      help="relative noise added to b (default %(default)s)")
    demo.add_argument("--eps", type=_float_type(positive=True), default=1e-8,
                      help="target accuracy ||x - x*|| (default %(default)s); must be >= 1000 * "
                           "float64 machine epsilon (2.2e-13)")
    demo.add_argument("--method", default="auto", choices=METHODS,
                      help="solver method (default %(default)s)")
    demo.add_argument("--seed", type=_int_type(0), default=0,
                      help="random seed for the problem and the solver (default %(default)s)")
    demo.add_argument("--compare", action="store_true",
                      help="also run exact Newton and scipy L-BFGS-B on the same problem "
                           "(default: off)")
    demo.set_defaults(func=_demo)

    solve = sub.add_parser(
        "solve", help="solve a problem given as files A and b",
        description="Solve min_x 1/2 ||phi(Ax)/<phi(Ax),1> - b||^2 + 1/2 ||w * Ax||^2 "
                    "+ lam/2 ||x||^2 for A and b read from files, print a summary and "
                    "optionally write x and a JSON report. Files are loaded safely (regular "
                    "files only, never unpickled, sizes checked against the header, the file "
                    "and the available memory); outputs are checked before solving and "
                    "written atomically.",
        epilog="Exit status: 0 converged, 1 eps not reached (x and the JSON are still "
               "written), 2 bad input.")
    solve.add_argument("A", help="matrix A (n x d): scipy sparse .npz (scipy.sparse.save_npz), "
                                 "dense .npy (numpy.save), dense .csv (comma-separated numbers, "
                                 "one row per line), MatrixMarket .mtx, or svmlight/libsvm "
                                 "text .svm/.libsvm/.svmlight/.txt (labels ignored)")
    solve.add_argument("b", help="target b (n): .npy, or text (.txt/.dat/.csv) with one number "
                                 "per line")
    solve.add_argument("--link", default="resnet", choices=LINKS,
                       help="link phi: resnet exp(z) + z, softmax exp(z), cosh, sinh "
                            "(default %(default)s)")
    solve.add_argument("--lam", type=_float_type(nonnegative=True), default=0.0,
                       help="ridge strength lam >= 0 (default %(default)s)")
    solve.add_argument("--w", default=None, metavar="W",
                       help="weights of the regulariser 1/2 ||w * Ax||^2: a number, or a vector "
                            "file (.npy/.txt) of length n (default: none)")
    solve.add_argument("--eps", type=_float_type(positive=True), default=1e-6,
                       help="target accuracy ||x - x*|| (default %(default)s)" + EPS_HELP)
    solve.add_argument("--method", default="auto", choices=METHODS,
                       help="exact Newton, sketched Newton, sketch-preconditioned Newton-CG, or "
                            "auto (cost model) (default %(default)s)")
    solve.add_argument("--sketch", default="leverage", choices=SKETCHES,
                       help="sketch of the Hessian's diagonal part (default %(default)s)")
    solve.add_argument("--sketch-size", type=_int_type(1), default=None,
                       help="rows of the sketch (default 20 d; for --method sketch then "
                            "adaptive: doubled while the convergence is slow)")
    solve.add_argument("--seed", type=_int_type(0), default=0,
                       help="random seed; results are reproducible (default %(default)s)")
    solve.add_argument("--max-iter", type=_int_type(0), default=100,
                       help="maximum Newton iterations (default %(default)s)")
    solve.add_argument("--presolve", default="auto", choices=PRESOLVES,
                       help="warm start from a sample of the rows of a tall problem: auto (cost "
                            "model), sample (whenever tall) or none (default %(default)s)")
    solve.add_argument("--x0", default=None, metavar="FILE",
                       help="starting point, a vector file (.npy/.txt) of length d "
                            "(default: 0 for resnet/softmax, see solve() for cosh/sinh)")
    solve.add_argument("--out", default=None, metavar="X.npy",
                       help="write the solution x here: .npy, or .txt with one number per line "
                            "(default: not written; x is printed)")
    solve.add_argument("--json", default=None, metavar="RESULT.json",
                       help="write the result (x, fun, grad_norm, error_bound, nit, success, "
                            "status, message, method, passes, time, timings, history) as JSON; "
                            "non-finite numbers become null (default: not written)")
    solve.add_argument("--zero-based", type=_zero_based, default="auto",
                       metavar="{auto,true,false}",
                       help="svmlight files only: whether column indices start at 0 "
                            "(default %(default)s: guessed by scikit-learn)")
    solve.add_argument("--verbose", "-v", action="store_true",
                       help="print one line per Newton iteration (default: off)")
    solve.set_defaults(func=_solve)

    fit = sub.add_parser(
        "fit", help="fit L2-regularised logistic regression (binary or multinomial)",
        description="Fit sketchnewton.SketchedLogisticRegression (min C * sum_i loss_i + "
                    "1/2 ||W||^2, as scikit-learn's LogisticRegression(C=C)) to labelled "
                    "data, print a summary (classes, n, d, non-zeros, method, iterations, "
                    "time, training accuracy; with --test, test accuracy and log-loss) and "
                    "optionally write the model (.npz: classes, coef, intercept, C, "
                    "fit_intercept, n_features; never pickled) and a JSON summary.",
        epilog="Exit status: 0 converged, 1 not converged (the model and the JSON are still "
               "written), 2 bad input.")
    fit.add_argument("train", metavar="TRAIN",
                     help="training data: svmlight/libsvm text (.svm/.libsvm/.svmlight/.txt; "
                          "labels in the first column), or a matrix file (.npy, .csv, .npz, "
                          ".mtx; see 'solve') with --labels")
    fit.add_argument("--labels", default=None, metavar="Y",
                     help="class labels of a matrix-file TRAIN: a vector file (.npy/.txt) "
                          "(default: none; svmlight files carry their labels)")
    fit.add_argument("--C", type=_float_type(positive=True), default=1.0,
                     help="inverse regularisation strength C > 0 (default %(default)s)")
    fit.add_argument("--no-intercept", action="store_true",
                     help="fit no intercept (default: an unpenalised intercept is fitted)")
    fit.add_argument("--tol", type=_float_type(positive=True), default=1e-8,
                     help="stop when half the squared Newton decrement is below tol times the "
                          "objective (default %(default)s)")
    fit.add_argument("--method", default="auto", choices=FIT_METHODS,
                     help="exact Newton, sketch-preconditioned Newton-CG, sketched Newton, or "
                          "auto (cost model) (default %(default)s)")
    fit.add_argument("--max-iter", type=_int_type(0), default=100,
                     help="maximum Newton iterations (default %(default)s)")
    fit.add_argument("--seed", type=_int_type(0), default=0,
                     help="random seed; results are reproducible (default %(default)s)")
    fit.add_argument("--test", default=None, metavar="TEST",
                     help="held-out data in the format of TRAIN: report its accuracy and "
                          "log-loss (default: none)")
    fit.add_argument("--test-labels", default=None, metavar="Y",
                     help="class labels of a matrix-file --test (default: none)")
    fit.add_argument("--model", default=None, metavar="MODEL.npz",
                     help="write the model here (numpy .npz: classes, coef, intercept, C, "
                          "fit_intercept, n_features) (default: not written)")
    fit.add_argument("--json", default=None, metavar="SUMMARY.json",
                     help="write the summary as JSON (default: not written)")
    fit.add_argument("--n-features", type=_int_type(1), default=None, metavar="N",
                     help="number of features (columns) of svmlight files, so that models and "
                          "data files agree; a file with a larger index is refused (default: "
                          "the largest index in TRAIN and TEST)")
    fit.add_argument("--zero-based", type=_zero_based, default="auto",
                     metavar="{auto,true,false}",
                     help="svmlight files only: whether feature indices start at 0 "
                          "(default %(default)s: guessed by scikit-learn from TRAIN and TEST "
                          "together)")
    fit.add_argument("--verbose", "-v", action="store_true",
                     help="print one line per Newton iteration (default: off)")
    fit.set_defaults(func=_fit)
    return parser
