"""The link vocabulary of the normalized regression family: names, codes and a numpy reference.

``phi`` is ``exp(z) + z`` (``resnet``: the unified ResNet + softmax scheme of Song, Wang,
Yin, arXiv:2309.13482), ``exp`` (``softmax``), ``cosh`` or ``sinh`` (docs/math.md section 2).
The numba kernels (:mod:`sketchnewton._kernels.links`) compute with the integer codes;
the estimators, the data generators and the tests use the names and :func:`link_numpy`,
the plain-numpy twin of the kernels. Values are *scaled* by ``exp(-m)`` for a shift ``m``
(:func:`link_shift`) so that no exponential overflows.
"""

import numpy as np

__all__ = ["LINKS", "LINK_CODES", "RESNET", "SOFTMAX", "COSH", "SINH", "link_shift", "link_numpy"]

RESNET, SOFTMAX, COSH, SINH = 0, 1, 2, 3
#: the link names and their codes (``"exp"`` is accepted as an alias of ``"softmax"``)
LINK_CODES = {"resnet": RESNET, "softmax": SOFTMAX, "exp": SOFTMAX, "cosh": COSH, "sinh": SINH}
#: the link names
LINKS = ("resnet", "softmax", "cosh", "sinh")


def link_shift(z, link):
    """The scale ``m`` for which ``exp(-m) phi(z)`` cannot overflow (numpy; ``link`` a name or code)."""
    code = LINK_CODES[link] if isinstance(link, str) else link
    if z.size == 0:
        return 0.0
    if code in (COSH, SINH):
        return float(np.abs(z).max())
    m = float(z.max())
    return max(m, 0.0) if code == RESNET else m


def link_numpy(z, link, m=None):
    """``exp(-m) (phi(z), phi'(z), phi''(z))`` in plain numpy: the reference twin of the kernels.

    ``m`` defaults to :func:`link_shift`; returns ``(u, v, q, m)``.
    """
    code = LINK_CODES[link] if isinstance(link, str) else link
    z = np.asarray(z, dtype=np.float64)
    m = link_shift(z, code) if m is None else float(m)
    if code == SOFTMAX:
        e = np.exp(z - m)
        return e, e, e, m
    if code == RESNET:
        e = np.exp(z - m)
        em = np.exp(-m)
        return e + z * em, e + em, e, m
    ep, en = np.exp(z - m), np.exp(-z - m)
    ch, sh = 0.5 * (ep + en), 0.5 * (ep - en)
    return (ch, sh, ch, m) if code == COSH else (sh, ch, sh, m)
