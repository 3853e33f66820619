"""convcalc.compute.gradients against brute-force sums written here, finite differences
and the adjoint identities (PyTorch is compared in tools/check_gradients_against_torch.py)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.calc.choices import Activation, ChannelMode, PadMode, PoolKind
from convcalc.calc.layers import Conv, Deconv, GlobalPool, Pointwise, Pool, Spec
from convcalc.compute import ops
from convcalc.compute.gradients import (
    backward,
    conv_backward,
    conv_transpose_backward,
    global_pool_backward,
    pool_backward,
)
from convcalc.compute.pipeline import Settings, Stage
from convcalc.errors import ConvcalcError

# -- brute-force references --------------------------------------------------


def brute_conv_grads(
    x: Any, w: Any, g: Any, s: int, p: int, d: int, groups: int
) -> tuple[Any, Any]:
    """dL/dx and dL/dw of a zero-padded grouped correlation, one product at a time."""
    h, wd = x.shape[:2]
    kh, kw, cg, f = w.shape
    fg = f // groups
    gx, gw = np.zeros(x.shape), np.zeros(w.shape)
    for r, col, o, i, j, k in itertools.product(
        range(g.shape[0]), range(g.shape[1]), range(f), range(kh), range(kw), range(cg)
    ):
        rr, cc, ch = r * s + i * d - p, col * s + j * d - p, (o // fg) * cg + k
        if 0 <= rr < h and 0 <= cc < wd:
            gx[rr, cc, ch] += g[r, col, o] * w[i, j, k, o]
            gw[i, j, k, o] += g[r, col, o] * x[rr, cc, ch]
    return gx, gw


def brute_pool_grad(x: Any, kind: PoolKind, k: int, s: int, p: int, g: Any) -> Any:
    """Max: to the first largest cell of the window (row-major); avg: k·k shares
    (padding counted, PyTorch's count_include_pad), floor rounding."""
    gx = np.zeros(x.shape)
    for r, col, ch in itertools.product(range(g.shape[0]), range(g.shape[1]), range(x.shape[2])):
        cells = [
            (r * s + i - p, col * s + j - p)
            for i in range(k)
            for j in range(k)
            if 0 <= r * s + i - p < x.shape[0] and 0 <= col * s + j - p < x.shape[1]
        ]
        if kind == PoolKind.MAX:
            best = max(cells, key=lambda rc: (x[rc[0], rc[1], ch], -cells.index(rc)))
            gx[best[0], best[1], ch] += g[r, col, ch]
        else:
            for rr, cc in cells:
                gx[rr, cc, ch] += g[r, col, ch] / (k * k)
    return gx


def numeric_grad(fn: Any, a: Any, eps: float = 1e-6) -> Any:
    """Central finite differences of the scalar ``fn`` at ``a``."""
    grad = np.zeros(a.shape)
    for index in np.ndindex(a.shape):
        up, down = a.copy(), a.copy()
        up[index] += eps
        down[index] -= eps
        grad[index] = (fn(up) - fn(down)) / (2 * eps)
    return grad


def conv_stage(
    kernels: Any, bias: Any = None, act: Activation = Activation.NONE, **kw: Any
) -> Stage:
    layer = Conv(out=None, kernel=None, **kw)
    return Stage(Spec(text="conv", layer=layer), tuple(kernels), bias, act)


# -- convolution ---------------------------------------------------------------

GEOMETRIES = list(itertools.product((1, 2, 3), (0, 1, 2), (1, 2), ((1, 1), (3, 2), (4, 4), (4, 2))))


@pytest.mark.parametrize(("s", "p", "d", "groups_channels"), GEOMETRIES)
def test_conv_backward_equals_brute_force(s: int, p: int, d: int, groups_channels: Any) -> None:
    channels, groups = groups_channels
    groups = groups if channels % groups == 0 else 1
    rng = np.random.default_rng(s * 100 + p * 10 + d)
    x = rng.normal(size=(7, 6, channels))
    w = rng.normal(size=(3, 2, channels // groups, 2 * groups))
    y = ops.correlate(x, w, stride=(s, s), padding=(p, p), dilation=(d, d), groups=groups)
    g = rng.normal(size=y.shape)
    gx, gw = conv_backward(x, w, g, stride=(s, s), padding=(p, p), dilation=(d, d), groups=groups)
    want_x, want_w = brute_conv_grads(x, w, g, s, p, d, groups)
    np.testing.assert_allclose(gx, want_x, atol=1e-12)
    np.testing.assert_allclose(gw, want_w, atol=1e-12)


@pytest.mark.parametrize("mode", list(PadMode))
def test_conv_backward_pad_modes_equal_finite_differences(mode: PadMode) -> None:
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(4, 5, 2)), rng.normal(size=(3, 3, 2, 2))
    y = ops.correlate(x, w, padding=(2, 2), pad_mode=mode, stride=(2, 1))
    g = rng.normal(size=y.shape)

    def loss(a: Any) -> float:
        out = ops.correlate(a, w, padding=(2, 2), pad_mode=mode, stride=(2, 1))
        return float((out * g).sum())

    gx, _ = conv_backward(x, w, g, padding=(2, 2), pad_mode=mode, stride=(2, 1))
    np.testing.assert_allclose(gx, numeric_grad(loss, x), atol=1e-6)


def test_conv_backward_same_padding_is_asymmetric() -> None:
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=(6, 6, 1)), rng.normal(size=(2, 2, 1, 1))
    g = rng.normal(size=(6, 6, 1))
    gx, gw = conv_backward(x, w, g, padding=("same", "same"))
    # SAME with a 2x2 kernel pads 0 before and 1 after: the brute force with p=0 on a
    # bottom/right zero-padded copy
    want_x, want_w = brute_conv_grads(np.pad(x, ((0, 1), (0, 1), (0, 0))), w, g, 1, 0, 1, 1)
    np.testing.assert_allclose(gx, want_x[:6, :6])
    np.testing.assert_allclose(gw, want_w)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(0, 2),
    st.integers(1, 2),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(0, 2**32 - 1),
)
def test_adjoint_identities(s: int, p: int, d: int, c: int, f: int, seed: int) -> None:
    """<conv(x, w), g> == <x, dL/dx> == <w, dL/dw>: the convolution is linear in each."""
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=(6, 7, c)), rng.normal(size=(2, 3, c, f))
    y = ops.correlate(x, w, stride=(s, s), padding=(p, p), dilation=(d, d))
    g = rng.normal(size=y.shape)
    gx, gw = conv_backward(x, w, g, stride=(s, s), padding=(p, p), dilation=(d, d))
    inner = float((y * g).sum())
    assert float((x * gx).sum()) == pytest.approx(inner, abs=1e-9)
    assert float((w * gw).sum()) == pytest.approx(inner, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2), st.integers(1, 2), st.integers(0, 2**32 - 1))
def test_transposed_adjoint_and_finite_differences(s: int, p: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 2, 2, 3))
    kw = {"stride": (s, s), "padding": (p, p), "dilation": (d, d)}
    try:
        y = ops.conv_transpose(x, w, **kw)
    except ConvcalcError:
        return  # padding larger than the output
    g = rng.normal(size=y.shape)
    gx, gw = conv_transpose_backward(x, w, g, **kw)
    inner = float((y * g).sum())
    assert float((x * gx).sum()) == pytest.approx(inner, abs=1e-9)
    assert float((w * gw).sum()) == pytest.approx(inner, abs=1e-9)
    want = numeric_grad(lambda a: float((ops.conv_transpose(a, w, **kw) * g).sum()), x)
    np.testing.assert_allclose(gx, want, atol=1e-6)


def test_upstream_gradient_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ConvcalcError, match=r"shape 2x2 does not fit the output's 3x3x1"):
        conv_backward(np.ones((5, 5)), np.ones((3, 3)), np.ones((2, 2)))


# -- pooling -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "k", "s", "p"),
    [
        (kind, k, s, p)
        for kind in (PoolKind.MAX, PoolKind.AVG)
        for k, s, p in [(2, 2, 0), (3, 1, 1), (3, 2, 1), (2, 1, 0), (3, 3, 0)]
    ],
)
def test_pool_backward_equals_brute_force(kind: PoolKind, k: int, s: int, p: int) -> None:
    rng = np.random.default_rng(k * 10 + s)
    x = rng.integers(0, 3, size=(7, 6, 2)).astype(float)  # ties: the first wins
    y = ops.pool(x, kind, (k, k), stride=(s, s), padding=(p, p))
    g = rng.normal(size=y.shape)
    got = pool_backward(x, kind, (k, k), g, stride=(s, s), padding=(p, p))
    np.testing.assert_allclose(got, brute_pool_grad(x, kind, k, s, p, g), atol=1e-12)


def test_max_pool_routes_to_the_winner() -> None:
    x = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]])
    got = pool_backward(x, PoolKind.MAX, (2, 2), np.array([[1, 2], [3, 4]]))[..., 0]
    assert got.tolist() == [[0, 0, 2, 0], [0, 1, 0, 0], [0, 0, 0, 4], [0, 3, 0, 0]]


def test_avg_pool_exclude_pad_divides_by_real_cells() -> None:
    x = np.ones((3, 3, 1))
    y = ops.pool(x, PoolKind.AVG, (3, 3), stride=(1, 1), padding=(1, 1), exclude_pad=True)
    g = np.random.default_rng(1).normal(size=y.shape)

    def loss(a: Any) -> float:
        out = ops.pool(a, PoolKind.AVG, (3, 3), stride=(1, 1), padding=(1, 1), exclude_pad=True)
        return float((out * g).sum())

    got = pool_backward(x, PoolKind.AVG, (3, 3), g, stride=(1, 1), padding=(1, 1), exclude_pad=True)
    np.testing.assert_allclose(got, numeric_grad(loss, x), atol=1e-6)


def test_l2_pool_gradient_is_refused() -> None:
    with pytest.raises(ConvcalcError, match="l2 pooling is not computed; valid: max, avg"):
        pool_backward(np.ones((4, 4)), PoolKind.L2, (2, 2), np.ones((2, 2)))


def test_global_pools() -> None:
    x = np.array([[1.0, 5.0], [5.0, 2.0]])
    assert global_pool_backward(x, PoolKind.MAX, [3.0])[..., 0].tolist() == [[0, 3], [0, 0]]
    assert global_pool_backward(x, PoolKind.AVG, [4.0])[..., 0].tolist() == [[1, 1], [1, 1]]


# -- stages and pipelines -------------------------------------------------------


@pytest.mark.parametrize("mode", list(ChannelMode))
@pytest.mark.parametrize("flip", [False, True])
def test_stage_gradients_equal_finite_differences(mode: ChannelMode, flip: bool) -> None:
    """2-D kernels on 3 channels (each: per channel; sum: summed), two filters, bias,
    tanh: every gradient against central differences of the forward pass."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, 6, 3))
    kernels = [rng.normal(size=(3, 2)) for _ in range(2)]
    bias = (0.5, -1.0)
    run_settings = Settings(channels=mode, flip=flip)

    def stage(ks: Any = kernels, b: Any = bias) -> Stage:
        return conv_stage(ks, b, Activation.TANH, stride=(2,), padding=(1,), dilation=(1,))

    out = backward(x, [stage()], run_settings)
    g = rng.normal(size=out.output.shape)
    got = backward(x, [stage()], run_settings, g)

    def loss_x(a: Any) -> float:
        return float((backward(a, [stage()], run_settings).output * g).sum())

    np.testing.assert_allclose(got.grad_input, numeric_grad(loss_x, x), atol=1e-6)
    grads = got.layers[0]
    assert grads is not None and grads.bias is not None
    for f in range(2):

        def loss_k(k: Any, f: int = f) -> float:
            ks = [k if i == f else kernels[i] for i in range(2)]
            return float((backward(x, [stage(ks)], run_settings).output * g).sum())

        np.testing.assert_allclose(grads.kernels[f], numeric_grad(loss_k, kernels[f]), atol=1e-6)
        assert grads.kernels[f].shape == (3, 2)

        def loss_b(b: Any, f: int = f) -> float:
            values = tuple(float(v) for v in b)
            full = tuple(values[0] if i == f else bias[i] for i in range(2))
            return float((backward(x, [stage(kernels, full)], run_settings).output * g).sum())

        assert grads.bias[f] == pytest.approx(float(numeric_grad(loss_b, np.array([bias[f]]))[0]))


def test_pipeline_chain_rule_equals_finite_differences() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(6, 6, 2))
    stages = [
        conv_stage([rng.normal(size=(3, 3, 2)) for _ in range(3)], padding=(1,)),
        Stage(Spec(text="relu", layer=Pointwise(name="relu"))),
        Stage(Spec(text="maxpool:2", layer=Pool(kind=PoolKind.MAX, kernel=(2,)))),
        Stage(
            Spec(text="deconv", layer=Deconv(out=None, kernel=None, stride=(2,))),
            (np.ones((2, 2)),),
        ),
        Stage(Spec(text="softmax", layer=Pointwise(name="softmax"))),
        Stage(Spec(text="gap", layer=GlobalPool(kind=PoolKind.AVG))),
    ]
    g = rng.normal(size=(1, 1, 3))
    got = backward(x, stages, Settings(), g)

    def loss(a: Any) -> float:
        return float((backward(a, stages, Settings()).output * g).sum())

    np.testing.assert_allclose(got.grad_input, numeric_grad(loss, x), atol=1e-6)
    assert [layer is None for layer in got.layers] == [False, True, True, False, True, True]


def test_default_upstream_is_ones_and_integer_input_computes_in_float64() -> None:
    x = np.arange(25).reshape(5, 5)
    got = backward(x, [conv_stage([np.ones((3, 3))], (0.0,))])
    assert got.grad_output.tolist() == np.ones((3, 3, 1)).tolist()
    assert got.grad_input.dtype == np.float64
    assert got.layers[0] is not None and got.layers[0].bias == (9.0,)


def test_a_stage_without_gradient_is_named() -> None:
    stages = [
        conv_stage([np.ones((2, 2))]),
        Stage(Spec(text="l2pool:2", layer=Pool(kind=PoolKind.L2, kernel=(2,)))),
    ]
    with pytest.raises(ConvcalcError, match=r"layer 2 \(l2pool:2\): the gradient of l2 pooling"):
        backward(np.ones((5, 5)), stages)


@pytest.mark.parametrize("name", ["gelu", "silu", "hardswish", "hsigmoid", "identity"])
def test_the_smooth_activations_backpropagate_their_central_difference(name: str) -> None:
    from convcalc.calc.grammar import parse_spec
    from convcalc.compute.gradients import backward
    from convcalc.compute.pipeline import Stage, run

    rng = np.random.default_rng(5)
    x = rng.uniform(-5, 5, (4, 5, 2))
    x[np.abs(np.abs(x) - 3) < 0.01] = 0.5  # hardswish and hsigmoid have kinks at ±3
    g = rng.normal(size=x.shape)
    stages = [Stage(parse_spec(name))]
    h = 1e-6
    slope = (run(x + h, stages).output - run(x - h, stages).output) / (2 * h)
    np.testing.assert_allclose(backward(x, stages, grad_output=g).grad_input, g * slope, atol=1e-7)


def test_the_kinks_take_pytorchs_side() -> None:
    from convcalc.compute.pointwise import SMOOTH

    at = np.array([-3.0, 3.0])
    # torch.nn.functional.hardswish / hardsigmoid backward at exactly -3 and 3
    assert SMOOTH["hardswish"].slope(at).tolist() == [0.0, 1.0]
    assert SMOOTH["hsigmoid"].slope(at).tolist() == [0.0, 0.0]
