"""The pointwise end of a layer: the bias added per filter, then the activation.

Shared by the 2-D operations (`convcalc.compute.ops`) and those of any rank
(`convcalc.compute.ops_nd`); callers import `activate` and `LRELU_SLOPE` from
`convcalc.compute.ops`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from convcalc.calc.choices import Activation
from convcalc.compute.arrays import Array, working_array
from convcalc.errors import ConvcalcError

LRELU_SLOPE = 0.01
"""The slope of leaky ReLU below zero (PyTorch's default)."""


def activate(x: ArrayLike, activation: Activation) -> Array:
    """Apply a pointwise activation; same shape, working dtype (float32 or float64).

    ``relu``: max(x, 0); ``lrelu``: x if x >= 0 else 0.01x; ``sigmoid``:
    1/(1 + e^-x) (computed without overflow); ``tanh``; ``none``: x itself.

    Examples
    --------
    >>> activate(np.array([-2, 0, 3]), Activation.RELU)
    array([0., 0., 3.])
    """
    xa = working_array(x)
    if activation == Activation.NONE:
        return xa
    if activation == Activation.RELU:
        return np.maximum(xa, 0)
    if activation == Activation.LRELU:
        return np.where(xa >= 0, xa, xa * LRELU_SLOPE)
    if activation == Activation.SIGMOID:
        return np.exp(-np.logaddexp(0, -xa))
    if activation == Activation.TANH:
        return np.tanh(xa)
    raise ConvcalcError(f"activation {activation!r} is not valid; valid: {', '.join(Activation)}")


def add_bias(y: Array, bias: Sequence[float] | None) -> Array:
    """``y`` (... x F) plus one bias value per filter, in place; ``y`` itself without one."""
    if bias is None:
        return y
    b = np.asarray(bias, dtype=y.dtype).reshape(-1)
    if b.shape[0] != y.shape[-1]:
        raise ConvcalcError(
            f"{b.shape[0]} bias value(s) for {y.shape[-1]} filter(s); "
            f"valid: one value per filter ({y.shape[-1]})"
        )
    y += b
    return y
