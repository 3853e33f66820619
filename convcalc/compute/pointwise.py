"""The pointwise end of a layer: the bias added per filter, then the activation; and the
activations of the grammar beyond a layer's own (`SMOOTH`), with their derivatives.

Shared by the 2-D operations (`convcalc.compute.ops`) and those of any rank
(`convcalc.compute.ops_nd`); callers import `activate` and `LRELU_SLOPE` from
`convcalc.compute.ops`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

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


class Smooth(NamedTuple):
    """An activation as PyTorch defines it: its value, and its derivative (both of x)."""

    value: Callable[[Array], Array]
    slope: Callable[[Array], Array]


def _normal_cdf(x: Array) -> Array:
    """Φ(x), exactly: numpy has no erf, so math.erf value by value."""
    erf = np.asarray(np.frompyfunc(math.erf, 1, 1)(x / math.sqrt(2)), dtype=x.dtype)
    result: Array = 0.5 * (1 + erf)
    return result


def _normal_pdf(x: Array) -> Array:
    result: Array = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return result


def _sigmoid(x: Array) -> Array:
    return activate(x, Activation.SIGMOID)


def _hsigmoid(x: Array) -> Array:
    result: Array = np.clip(x + 3, 0, 6) / 6
    return result


def _hardswish_slope(x: Array) -> Array:
    # PyTorch 2.13 (checked with autograd): 0 up to -3, x/3 + 1/2 between, 1 from 3 on
    result: Array = np.where(x <= -3, 0, np.where(x < 3, x / 3 + 0.5, 1)).astype(x.dtype)
    return result


SMOOTH: dict[str, Smooth] = {
    "gelu": Smooth(lambda x: x * _normal_cdf(x), lambda x: _normal_cdf(x) + x * _normal_pdf(x)),
    "silu": Smooth(lambda x: x * _sigmoid(x), lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x)))),
    "hardswish": Smooth(lambda x: x * _hsigmoid(x), _hardswish_slope),
    "hsigmoid": Smooth(_hsigmoid, lambda x: np.where((x > -3) & (x < 3), 1 / 6, 0).astype(x.dtype)),
    "identity": Smooth(lambda x: x, np.ones_like),
}
"""The activations of the grammar that `activate` does not take, as PyTorch defines them:
GELU (the exact one, not the tanh estimate), SiLU (swish), Hardswish, Hardsigmoid,
Identity; each with the slope its backward pass multiplies dL/dY by. (PyTorch's
Hardsigmoid slope is 1/6 rounded to float32 even in float64; this one is 1/6.)"""
