"""Transposed convolution and gradients at rank 1 (signals) and 3 (volumes): against a
brute-force scatter loop, brute-force sums and central finite differences written here
(PyTorch is compared in tools/check_ranks_against_torch.py)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from convcalc.calc.choices import ChannelMode, PadMode, PoolKind
from convcalc.calc.grammar import parse_spec
from convcalc.compute.gradients import (
    backward,
    conv_backward,
    conv_backward_nd,
    conv_transpose_backward_nd,
    pool_backward,
    pool_backward_nd,
)
from convcalc.compute.ops import conv_transpose, conv_transpose_nd
from convcalc.compute.pipeline import Settings, Stage, run
from tests.compute.test_ranks import brute_nd


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def brute_transposed(
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, ...],
    pads: tuple[int, ...],
    dilation: tuple[int, ...],
    output_padding: tuple[int, ...],
) -> np.ndarray:
    """Scatter every input value times the kernel into a full output at n·s + t·d, then
    crop the padding from the start: x (*N, C), w (*K, C, F)."""
    rank = x.ndim - 1
    kernel = w.shape[:rank]
    sizes = [
        (x.shape[a] - 1) * stride[a]
        - 2 * pads[a]
        + dilation[a] * (kernel[a] - 1)
        + output_padding[a]
        + 1
        for a in range(rank)
    ]
    full = np.zeros(
        [pads[a] + sizes[a] + dilation[a] * kernel[a] + stride[a] for a in range(rank)]
        + [w.shape[-1]]
    )
    for n in itertools.product(*map(range, x.shape[:rank])):
        for t in itertools.product(*map(range, kernel)):
            at = tuple(n[a] * stride[a] + t[a] * dilation[a] for a in range(rank))
            full[at] += x[n] @ w[t]
    return full[tuple(slice(pads[a], pads[a] + sizes[a]) for a in range(rank))]


def numeric_grad(fn: Any, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar ``fn`` at ``a``."""
    grad = np.zeros(a.shape)
    for index in np.ndindex(a.shape):
        up, down = a.copy(), a.copy()
        up[index] += eps
        down[index] -= eps
        grad[index] = (fn(up) - fn(down)) / (2 * eps)
    return grad


def stage(text: str, *kernels: Any, bias: Any = None) -> Stage:
    return Stage(parse_spec(text), tuple(np.asarray(k, float) for k in kernels), bias)


# -- transposed convolution, forward ------------------------------------------------------

TRANSPOSED = [
    ((1,), (0,), (1,), (0,)),
    ((2,), (1,), (1,), (1,)),
    ((3,), (2,), (2,), (2,)),
    ((2, 1, 3), (1, 0, 2), (1, 2, 1), (1, 0, 0)),
    ((2, 2, 2), (0, 1, 1), (1, 1, 2), (0, 1, 1)),
]


@pytest.mark.parametrize(("stride", "pads", "dilation", "output_padding"), TRANSPOSED)
def test_transposed_equals_the_scatter_loop(stride, pads, dilation, output_padding) -> None:
    rank = len(stride)
    shape = (7, 3) if rank == 1 else (3, 4, 3, 2)
    x = rng(1).integers(-3, 4, size=shape).astype(float)
    w = rng(2).integers(-2, 3, size=(*([3, 2, 3][:rank] if rank == 3 else [3]), shape[-1], 2))
    w = w.astype(float)
    got = conv_transpose_nd(
        x, w, stride=stride, padding=pads, dilation=dilation, output_padding=output_padding
    )
    np.testing.assert_array_equal(
        got, brute_transposed(x, w, stride, pads, dilation, output_padding)
    )


def test_transposed_2d_is_the_rank_2_case() -> None:
    x, w = rng(3).normal(size=(4, 5, 2)), rng(4).normal(size=(3, 2, 2, 3))
    args = dict(stride=(2, 3), padding=(1, 0), dilation=(1, 2), output_padding=(1, 0))
    np.testing.assert_allclose(
        conv_transpose(x, w, **args),
        brute_transposed(
            x, w, **{"stride": (2, 3), "pads": (1, 0), "dilation": (1, 2), "output_padding": (1, 0)}
        ),
    )
    np.testing.assert_allclose(conv_transpose_nd(x, w, **args), conv_transpose(x, w, **args))


def test_deconv1d_in_a_pipeline_filters_each_channel_and_adds_the_bias() -> None:
    x = rng(5).normal(size=(6, 2))
    k = rng(6).normal(size=3)
    out = run(x, [stage("deconv1d:k=w,s=2,p=1", k, bias=(0.5,))], Settings(rank=1)).output
    bank = np.zeros((3, 2, 2))  # channel c to output c (each)
    bank[:, 0, 0] = bank[:, 1, 1] = k
    np.testing.assert_allclose(out, brute_transposed(x, bank, (2,), (1,), (1,), (0,)) + 0.5)


# -- gradients against brute-force sums ----------------------------------------------------


def brute_conv_grads(x, w, g, stride, pads, dilation):
    """dL/dx and dL/dw of a zero-padded correlation of any rank, one product at a time."""
    rank = x.ndim - 1
    xp = np.pad(x, [(p, p) for p in pads] + [(0, 0)])
    gxp, gw = np.zeros(xp.shape), np.zeros(w.shape)
    for o in itertools.product(*map(range, g.shape[:rank])):
        for t in itertools.product(*map(range, w.shape[:rank])):
            at = tuple(o[a] * stride[a] + t[a] * dilation[a] for a in range(rank))
            gw[t] += np.outer(xp[at], g[o])
            gxp[at] += w[t] @ g[o]
    inner = tuple(slice(p, p + n) for p, n in zip(pads, x.shape[:rank], strict=True))
    return gxp[inner], gw


@pytest.mark.parametrize(
    ("stride", "pads", "dilation"),
    [((2,), (1,), (1,)), ((3,), (2,), (2,)), ((2, 1, 2), (1, 0, 1), (1, 2, 1))],
)
def test_conv_backward_nd_equals_brute_force(stride, pads, dilation) -> None:
    rank = len(stride)
    x = rng(7).normal(size=(11, 3) if rank == 1 else (5, 6, 5, 2))
    w = rng(8).normal(size=(3, 3, 2) if rank == 1 else (2, 3, 2, 2, 2))
    y = brute_nd(x, w, stride, pads, dilation)
    g = rng(9).normal(size=y.shape)
    gx, gw = conv_backward_nd(x, w, g, stride=stride, padding=pads, dilation=dilation)
    want_x, want_w = brute_conv_grads(x, w, g, stride, pads, dilation)
    np.testing.assert_allclose(gx, want_x, atol=1e-12)
    np.testing.assert_allclose(gw, want_w, atol=1e-12)


def test_conv_backward_2d_is_the_rank_2_case() -> None:
    x, w = rng(10).normal(size=(6, 5, 2)), rng(11).normal(size=(3, 2, 2, 3))
    g = rng(12).normal(size=(2, 5, 3))
    args = dict(stride=(2, 1), padding=(0, 1), dilation=(1, 2))
    for got, want in zip(
        conv_backward(x, w, g, **args), conv_backward_nd(x, w, g, **args), strict=True
    ):
        np.testing.assert_allclose(got, want)


@pytest.mark.parametrize("mode", [PadMode.REFLECT, PadMode.REPLICATE, PadMode.WRAP])
def test_conv_backward_nd_pad_modes_equal_finite_differences(mode: PadMode) -> None:
    x, w = rng(13).normal(size=(3, 4, 3, 1)), rng(14).normal(size=(2, 2, 2, 1, 1))
    args = dict(stride=(1, 2, 1), padding=(1, 1, 2), dilation=(1, 1, 1), pad_mode=mode)
    out = run(
        x, [stage("conv3d:k=w,s=1x2x1,p=1x1x2", w[..., 0, 0])], Settings(rank=3, pad_mode=mode)
    ).output
    g = rng(15).normal(size=out.shape)

    def loss(a: np.ndarray) -> float:
        y = run(
            a, [stage("conv3d:k=w,s=1x2x1,p=1x1x2", w[..., 0, 0])], Settings(rank=3, pad_mode=mode)
        ).output
        return float((y * g).sum())

    gx, _ = conv_backward_nd(x, w, g, **args)
    np.testing.assert_allclose(gx, numeric_grad(loss, x), atol=1e-6)


def test_transposed_backward_nd_is_the_adjoint_and_equals_finite_differences() -> None:
    x, w = rng(16).normal(size=(3, 2, 3, 2)), rng(17).normal(size=(2, 3, 2, 2, 2))
    args = dict(stride=(2, 1, 2), padding=(1, 0, 1), dilation=(1, 1, 2), output_padding=(1, 0, 0))
    y = conv_transpose_nd(x, w, **args)
    g = rng(18).normal(size=y.shape)
    gx, gw = conv_transpose_backward_nd(x, w, g, **args)

    def loss_x(a: np.ndarray) -> float:
        return float((conv_transpose_nd(a, w, **args) * g).sum())

    def loss_w(k: np.ndarray) -> float:
        return float((conv_transpose_nd(x, k, **args) * g).sum())

    np.testing.assert_allclose(gx, numeric_grad(loss_x, x), atol=1e-6)
    np.testing.assert_allclose(gw, numeric_grad(loss_w, w), atol=1e-6)


# -- pooling -------------------------------------------------------------------------------


def test_max_pool_3d_routes_to_the_first_winner_in_row_major_order() -> None:
    x = np.zeros((2, 2, 2, 1))
    x[0, 1, 1] = x[1, 0, 0] = 5.0  # a tie: slice 0 comes first
    x[1, 1, 1] = 1.0
    got = pool_backward_nd(
        x, PoolKind.MAX, (2, 2, 2), np.full((1, 1, 1, 1), 3.0), padding=(0,) * 3, dilation=(1,) * 3
    )
    want = np.zeros_like(x)
    want[0, 1, 1] = 3.0
    np.testing.assert_array_equal(got, want)


def test_max_pool_1d_tie_equals_the_2d_rule() -> None:
    x = np.array([[1.0], [4.0], [4.0], [2.0], [4.0], [4.0], [0.0]])
    got = pool_backward_nd(
        x, PoolKind.MAX, (3,), np.ones((3, 1)), stride=(2,), padding=(0,), dilation=(1,)
    )
    image = pool_backward(x[None, :, 0], PoolKind.MAX, (1, 3), np.ones((1, 3)), stride=(1, 2))
    assert got[:, 0].tolist() == [0, 1, 1, 0, 1, 0, 0] == image[0, :, 0].tolist()


@pytest.mark.parametrize("kind", [PoolKind.MAX, PoolKind.AVG])
@pytest.mark.parametrize("spec", ["{kind}pool1d:3,s=2,p=1,ceil", "{kind}pool3d:2x3x2,s=1x2x2,p=1"])
def test_pool_gradients_equal_finite_differences(kind: PoolKind, spec: str) -> None:
    rank = int(spec[spec.index("d:") - 1])
    x = rng(19).permutation(np.arange(np.prod((9, 2) if rank == 1 else (3, 4, 5, 1))))
    x = x.reshape((9, 2) if rank == 1 else (3, 4, 5, 1)) / 7.0  # distinct: no ties
    stages = [Stage(parse_spec(spec.format(kind=kind)))]
    config = Settings(rank=rank)
    out = backward(x, stages, config)
    g = rng(20).normal(size=out.output.shape)

    def loss(a: np.ndarray) -> float:
        return float((run(a, stages, config).output * g).sum())

    got = backward(x, stages, config, g).grad_input
    np.testing.assert_allclose(got, numeric_grad(loss, x, eps=1e-4), atol=1e-6)


# -- stages and pipelines --------------------------------------------------------------------

PIPELINES = [
    (1, (11, 2), ["conv1d:k=a,s=2,p=2,d=2", "relu", "maxpool1d:2"], [(3,), (3,)], ChannelMode.EACH),
    (1, (11, 2), ["conv1d:k=a,p=1", "tanh", "avgpool1d:3,s=2,p=1"], [(3, 2)], ChannelMode.SUM),
    (1, (6, 2), ["deconv1d:k=a,s=2,p=1,op=1", "sigmoid"], [(3,), (3,)], ChannelMode.EACH),
    (1, (6, 2), ["deconv1d:k=a,s=3,d=2", "gmp"], [(3, 2), (3, 2)], ChannelMode.SUM),
    (3, (4, 5, 3, 2), ["conv3d:k=a,s=2,p=1", "tanh", "gap"], [(2, 3, 2)] * 2, ChannelMode.SUM),
    (
        3,
        (3, 3, 2, 2),
        ["deconv3d:k=a,s=2x1x2,p=1", "maxpool3d:2,s=1", "softmax"],
        [(2, 2, 2, 2)],
        ChannelMode.EACH,
    ),
    (
        3,
        (3, 4, 3, 1),
        ["conv3d:k=a,p=1", "relu6", "avgpool3d:2,ceil"],
        [(3, 3, 3)],
        ChannelMode.EACH,
    ),
]


@pytest.mark.parametrize(("rank", "shape", "specs", "kernels", "mode"), PIPELINES)
@pytest.mark.parametrize("flip", [False, True])
def test_pipeline_gradients_equal_finite_differences(rank, shape, specs, kernels, mode, flip):
    """Input, every filter's kernel and bias against central differences of the forward
    pass, through activations and pooling; a kernel keeps its own shape."""
    r = rng(21)
    x = r.normal(size=shape)
    ks = [r.normal(size=k) for k in kernels]
    bias = tuple(r.normal(size=len(ks)))
    config = Settings(rank=rank, channels=mode, flip=flip)

    def stages(k: list[np.ndarray] = ks, b: tuple[float, ...] = bias) -> list[Stage]:
        first = Stage(parse_spec(specs[0]), tuple(k), b)
        return [first, *(Stage(parse_spec(s)) for s in specs[1:])]

    g = r.normal(size=run(x, stages(), config).output.shape)
    got = backward(x, stages(), config, g)

    def loss(a: np.ndarray, k: list[np.ndarray] = ks, b: tuple[float, ...] = bias) -> float:
        return float((run(a, stages(k, b), config).output * g).sum())

    np.testing.assert_allclose(got.grad_input, numeric_grad(loss, x), atol=1e-6)
    assert got.grad_input.shape == x.shape
    layer = got.layers[0]
    assert layer is not None and layer.bias is not None
    for f, k in enumerate(ks):
        want = numeric_grad(
            lambda v, f=f: loss(x, [v if i == f else ks[i] for i in range(len(ks))]), k
        )
        assert layer.kernels[f].shape == k.shape
        np.testing.assert_allclose(layer.kernels[f], want, atol=1e-6)
        b = numeric_grad(
            lambda v, f=f: loss(
                x, ks, tuple(v[0] if i == f else bias[i] for i in range(len(bias)))
            ),
            np.array([bias[f]]),
        )
        assert layer.bias[f] == pytest.approx(float(b[0]), abs=1e-6)


def test_default_upstream_is_ones_at_rank_1() -> None:
    x = np.arange(9.0)
    got = backward(x, [stage("conv1d:k=w,p=1", [1.0, 2.0, 1.0])], Settings(rank=1))
    assert got.grad_input[:, 0].tolist() == [3, 4, 4, 4, 4, 4, 4, 4, 3]
    assert got.layers[0] is not None
    assert got.layers[0].kernels[0].tolist() == [28, 36, 36]  # the padding reads 0
