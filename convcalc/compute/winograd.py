"""Convolution by Winograd's minimal filtering F(2x2, 3x3): 3x3 kernels, stride 1."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from convcalc.compute.arrays import CHUNK_BYTES, Array, Pair, prepare, tap_product
from convcalc.errors import ConvcalcError

_WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def correlate_winograd(
    x: ArrayLike,
    w: ArrayLike,
    *,
    stride: Pair = (1, 1),
    dilation: Pair = (1, 1),
    groups: int = 1,
    chunk_bytes: int = CHUNK_BYTES,
) -> Array:
    """Winograd minimal filtering F(2x2, 3x3): ``Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`` per tile.

    Each 2x2 output tile comes from a 4x4 input tile with 16 multiplications per
    channel pair instead of 36. Odd output sizes are padded with zeros to whole
    tiles and cropped. Needs 3x3 kernels, stride 1 and dilation 1. Shapes as in
    `correlate_padded`.

    Raises
    ------
    ConvcalcError
        Any other kernel size, stride or dilation.
    """
    xa, wa, ho, wo = prepare(x, w, stride, dilation, groups)
    kh, kw, _, f = wa.shape
    if (kh, kw) != (3, 3) or tuple(stride) != (1, 1) or tuple(dilation) != (1, 1):
        got = f"{kh}x{kw}" + "".join(
            f" with {name} {v[0]}x{v[1]}"
            for name, v in (("stride", stride), ("dilation", dilation))
            if tuple(v) != (1, 1)
        )
        raise ConvcalcError(
            f"winograd needs a 3x3 kernel with stride 1 and dilation 1; got {got}; "
            "valid: another method (direct, im2col, fft)"
        )
    th, tw = -(-ho // 2), -(-wo // 2)
    xp = np.pad(xa, ((0, 2 * th + 2 - xa.shape[0]), (0, 2 * tw + 2 - xa.shape[1]), (0, 0)))
    gm = _WINOGRAD_G.astype(xa.dtype)
    u = np.einsum("ai,ijcf,bj->abcf", gm, wa, gm)
    out = np.empty((2 * th, 2 * tw, f), dtype=xa.dtype)
    rows = max(1, chunk_bytes // (16 * tw * (xa.shape[2] + f) * xa.itemsize))
    for t0 in range(0, th, rows):
        n = min(t0 + rows, th) - t0
        v = _winograd_input(xp[2 * t0 : 2 * (t0 + n) + 2], n, tw)
        m = np.empty((4, 4, n * tw, f), dtype=xa.dtype)
        for i in range(4):
            for j in range(4):
                tap_product(v[i, j].reshape(n * tw, -1), u[i, j], groups, m[i, j])
        # Aᵀ M A with Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]], rows then columns
        s = (m[0] + m[1] + m[2], m[1] - m[2] - m[3])
        for i in range(2):
            y = (s[i][0] + s[i][1] + s[i][2], s[i][1] - s[i][2] - s[i][3])
            for j in range(2):
                out[2 * t0 + i : 2 * (t0 + n) : 2, j::2] = y[j].reshape(n, tw, f)
    return out[:ho, :wo]


def _winograd_input(xp: Array, n: int, tw: int) -> Array:
    """Bᵀ d B for n x tw tiles of 4x4 (stride 2) of xp: 4 x 4 x n x tw x C.

    Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], applied to
    strided views (rows, then columns) rather than to copied tiles.
    """
    d = [xp[i : i + 2 * n : 2] for i in range(4)]
    r = (d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3])
    v = np.empty((4, 4, n, tw, xp.shape[2]), dtype=xp.dtype)
    for i in range(4):
        c = [r[i][:, j : j + 2 * tw : 2] for j in range(4)]
        np.subtract(c[0], c[2], out=v[i, 0])
        np.add(c[1], c[2], out=v[i, 1])
        np.subtract(c[2], c[1], out=v[i, 2])
        np.subtract(c[1], c[3], out=v[i, 3])
    return v
