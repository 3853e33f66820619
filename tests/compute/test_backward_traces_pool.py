"""`backward_trace` of pooling layers and of one layer of a pipeline: each traced value
equals `backward`'s gradient and a brute-force sum written here, one window at a time."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convcalc.calc.choices import Activation, PoolKind, TraceKind
from convcalc.calc.layers import Conv, GlobalPool, Pointwise, Pool, Spec
from convcalc.compute import ops
from convcalc.compute.backward_traces import BackwardTrace, backward_trace, backward_trace_json
from convcalc.compute.gradients import backward
from convcalc.compute.pipeline import Settings, Stage, run
from convcalc.errors import ConvcalcError
from tests.conftest import CROSS, UFLDL

MAXPOOL_4X4 = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]])

# -- brute-force references ------------------------------------------------------


def window_cells(
    shape: tuple[int, ...], r: int, c: int, k: int, s: int, p: int, d: int
) -> list[tuple[int, int]]:
    """The real input cells of output (r, c)'s window, row-major."""
    h, w = shape[:2]
    cells = [(r * s + i * d - p, c * s + j * d - p) for i in range(k) for j in range(k)]
    return [(a, b) for a, b in cells if 0 <= a < h and 0 <= b < w]


def brute_max(x: Any, g: Any, k: int, s: int, p: int, d: int) -> Any:
    """Each window's dL/dY to its first largest real cell (row-major)."""
    gx = np.zeros(x.shape)
    for r, c, ch in itertools.product(*map(range, g.shape)):
        cells = window_cells(x.shape, r, c, k, s, p, d)
        best = cells[0]
        for cell in cells[1:]:
            if x[(*cell, ch)] > x[(*best, ch)]:
                best = cell
        gx[(*best, ch)] += g[r, c, ch]
    return gx


def brute_avg(x: Any, g: Any, k: int, s: int, p: int, exclude: bool) -> Any:
    """PyTorch's avg_pool2d divisor, written out: the window clipped to the padded
    input (count_include_pad), or to the real input (exclude)."""
    h, w = x.shape[:2]
    gx = np.zeros(x.shape)
    for r, c, ch in itertools.product(*map(range, g.shape)):
        top, left = r * s - p, c * s - p
        bottom, right = min(top + k, h + p), min(left + k, w + p)
        size = (bottom - top) * (right - left)
        top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
        if exclude:
            size = (bottom - top) * (right - left)
        gx[top:bottom, left:right, ch] += g[r, c, ch] / size
    return gx


def brute_pool(
    kind: PoolKind, x: Any, g: Any, k: int, s: int, p: int = 0, d: int = 1, exclude: bool = False
) -> Any:
    """`brute_max` or `brute_avg` (which has no dilation)."""
    if kind == PoolKind.MAX:
        return brute_max(x, g, k, s, p, d)
    return brute_avg(x, g, k, s, p, exclude)


def brute_conv(x: Any, k: Any, g: Any, s: int, p: int) -> tuple[Any, Any]:
    """dL/dX and dL/dW of a zero-padded one-filter correlation, product by product."""
    gx, gw = np.zeros(x.shape), np.zeros(k.shape)
    for r, c, i, j in itertools.product(range(g.shape[0]), range(g.shape[1]), *map(range, k.shape)):
        a, b = r * s + i - p, c * s + j - p
        if 0 <= a < x.shape[0] and 0 <= b < x.shape[1]:
            gx[a, b, 0] += g[r, c, 0] * k[i, j]
            gw[i, j] += g[r, c, 0] * x[a, b, 0]
    return gx, gw


# -- helpers -------------------------------------------------------------------------


def pool(kind: PoolKind, k: int, s: int, p: int = 0, d: int = 1, ceil: bool = False) -> Stage:
    layer = Pool(kind, (k,), (s,), (p,), (d,), ceil)
    return Stage(Spec(f"{kind}pool:{k},s={s},p={p}", layer))


def conv(kernel: Any, s: int = 1, p: int = 0, act: Activation = Activation.NONE) -> Stage:
    layer = Conv(None, None, (s,), (p,))
    return Stage(Spec("conv", layer), (np.asarray(kernel, float),), activation=act)


def every_cell(x: Any, stages: list[Stage], st_: Settings, g: Any, layer: int) -> BackwardTrace:
    """The trace of every input cell of layer ``layer``."""
    h, w = (run(x, stages[: layer - 1], st_).output if layer > 1 else x).shape[:2]
    cells = list(itertools.product(range(h), range(w)))
    t = backward_trace(x, stages, st_, g, layer=layer, at=cells, limit=len(cells))
    assert t.input_omitted == 0
    return t


def input_grad(t: BackwardTrace) -> Any:
    """The traced dL/dX, cell by cell (NaN where no step)."""
    grad = np.full(t.input_shape, np.nan)
    for step in t.steps:
        if step.grad == "input":
            assert step.value == pytest.approx(float(np.sum(step.terms[:, 0] * step.terms[:, 1])))
            grad[(*step.position, step.channel)] = step.value
    return grad


def geometry_or_skip(x: Any, stages: list[Stage], st_: Settings) -> Any:
    try:
        return run(x, stages, st_).output
    except ConvcalcError:
        assume(False)


# -- pooling ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([PoolKind.MAX, PoolKind.AVG]),
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(1, 2),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(0, 1),
    st.integers(1, 2),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_pool_steps_equal_the_gradient_and_a_brute_force_sum(
    kind: PoolKind,
    h: int,
    w: int,
    c: int,
    k: int,
    s: int,
    p: int,
    d: int,
    ceil: bool,
    exclude: bool,
    seed: int,
) -> None:
    d = 1 if kind == PoolKind.AVG else d  # PyTorch's average pooling has no dilation
    assume(2 * p <= k)
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (h, w, c)).astype(float)  # small values: many ties
    stage, st_ = pool(kind, k, s, p, d, ceil), Settings(exclude_pad=exclude)
    y = geometry_or_skip(x, [stage], st_)
    g = rng.integers(-3, 4, y.shape).astype(float)
    t = every_cell(x, [stage], st_, g, 1)
    assert (t.kind, t.pool, t.input_omitted) == (TraceKind.POOL, kind, 0)
    got = input_grad(t)
    np.testing.assert_allclose(got, backward(x, [stage], st_, g).grad_input, atol=1e-12)
    want = brute_pool(kind, x, g, k, s, p, d, exclude)
    np.testing.assert_allclose(got, want, atol=1e-12)
    for step in t.steps:  # the windows named are those that contain the cell
        contain = [
            (r, col)
            for r, col in itertools.product(range(y.shape[0]), range(y.shape[1]))
            if step.position in window_cells(x.shape, r, col, k, s, p, d)
        ]
        assert [win.output for win in step.windows] == contain
        for (dy, factor), win in zip(step.terms, step.windows, strict=True):
            assert dy == g[(*win.output, step.channel)]
            if kind == PoolKind.MAX:
                assert win.winner is not None
                assert win.best == x[(*win.winner, step.channel)]
                assert factor == (win.winner == step.position)


def test_max_pool_walk_through_names_windows_winners_and_ties() -> None:
    x = np.array([[4, 3, 4], [2, 4, 3], [2, 3, 4]])  # ties: the first 4 of a window wins
    t = backward_trace(x, [pool(PoolKind.MAX, 2, 1)], Settings(), at=[(1, 1), (0, 0)])
    centre, corner = t.steps
    assert centre.terms.tolist() == [[1, 0], [1, 0], [1, 1], [1, 1]]
    assert centre.value == 2
    assert [(w.output, w.winner, w.best) for w in centre.windows] == [
        ((0, 0), (0, 0), 4),
        ((0, 1), (0, 2), 4),
        ((1, 0), (1, 1), 4),
        ((1, 1), (1, 1), 4),
    ]
    assert (corner.value, corner.windows[0].winner) == (1, (0, 0))


def test_average_pool_divisors_with_padding_counted_or_not() -> None:
    stage = pool(PoolKind.AVG, 3, 2, 1)
    counted = backward_trace(MAXPOOL_4X4, [stage], Settings(), at=[(0, 0)])
    assert [w.count for w in counted.steps[0].windows] == [9]
    assert counted.steps[0].value == pytest.approx(1 / 9)
    alone = backward_trace(MAXPOOL_4X4, [stage], Settings(exclude_pad=True), at=[(0, 0)])
    assert [w.count for w in alone.steps[0].windows] == [4]
    assert alone.steps[0].terms.tolist() == [[1, 0.25]]


def test_a_cell_in_no_window_gets_nothing() -> None:
    t = backward_trace(UFLDL, [pool(PoolKind.MAX, 1, 2)], Settings(), at=[(0, 1)])
    assert t.steps[0].terms.shape == (0, 2) and t.steps[0].value == 0
    assert t.steps[0].windows == ()


@pytest.mark.parametrize("kind", [PoolKind.MAX, PoolKind.AVG])
def test_global_pooling_is_one_window(kind: PoolKind) -> None:
    stage = Stage(Spec("gmp" if kind == PoolKind.MAX else "gap", GlobalPool(kind)))
    x = np.stack([MAXPOOL_4X4, MAXPOOL_4X4.T], axis=2)
    g = np.array([[[2.0, -1.0]]])
    t = every_cell(x, [stage], Settings(), g, 1)
    assert t.kind == TraceKind.GLOBAL_POOL and t.output_shape == (1, 1, 2)
    np.testing.assert_allclose(input_grad(t), backward(x, [stage], Settings(), g).grad_input)
    np.testing.assert_allclose(
        input_grad(t),
        brute_pool(kind, x, g, 4, 4),
    )


def test_pool_json_names_each_terms_window() -> None:
    doc = backward_trace_json(
        backward_trace(MAXPOOL_4X4, [pool(PoolKind.MAX, 2, 2)], Settings(), at=[(1, 1), (0, 0)])
    )
    assert (doc["kind"], doc["op"], doc["kernel_positions"]) == ("pool", "max", 0)
    assert doc["upstream"] == {
        "from_layer": None,
        "from_spec": None,
        "values": [[[1], [1]], [[1], [1]]],
    }
    assert doc["backward_steps"] == [
        {
            "grad": "input",
            "channel": 0,
            "position": [1, 1],
            "terms": [[1, 1]],
            "value": 1,
            "windows": [{"output": [0, 0], "winner": [1, 1], "max": 9}],
        },
        {
            "grad": "input",
            "channel": 0,
            "position": [0, 0],
            "terms": [[1, 0]],
            "value": 0,
            "windows": [{"output": [0, 0], "winner": [1, 1], "max": 9}],
        },
    ]
    avg = backward_trace(MAXPOOL_4X4, [pool(PoolKind.AVG, 2, 2)], Settings(), at=[(0, 0)])
    assert backward_trace_json(avg)["backward_steps"][0]["windows"] == [
        {"output": [0, 0], "count": 4}
    ]


def test_l2_pooling_and_positions_outside_the_input_are_refused() -> None:
    with pytest.raises(ConvcalcError, match="gradient of l2 pooling is not computed"):
        backward_trace(MAXPOOL_4X4, [pool(PoolKind.L2, 2, 2)], Settings())
    with pytest.raises(ConvcalcError, match=r"\(4, 0\) is outside the 4x4 input"):
        backward_trace(MAXPOOL_4X4, [pool(PoolKind.MAX, 2, 2)], Settings(), at=[(4, 0)])


# -- one layer of a pipeline ---------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([PoolKind.MAX, PoolKind.AVG]),
    st.integers(3, 6),
    st.integers(3, 6),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(0, 1),
    st.integers(2, 3),
    st.integers(1, 2),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_conv_then_pool_each_layer_equals_the_chain_rule_by_brute_force(
    kind: PoolKind,
    h: int,
    w: int,
    k: int,
    s: int,
    p: int,
    pk: int,
    ps: int,
    relu: bool,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (h, w, 1)).astype(float)
    kernel = rng.integers(-1, 2, (k, k)).astype(float)
    act = Activation.RELU if relu else Activation.NONE
    stages = [conv(kernel, s, p, act), pool(kind, pk, ps)]
    out = geometry_or_skip(x, stages, Settings())
    g = rng.integers(-2, 3, out.shape).astype(float)
    y1 = ops.activate(ops.correlate(x, kernel, stride=(s, s), padding=(p, p)), act)
    g1 = brute_pool(kind, y1, g, pk, ps)
    first = every_cell(x, stages, Settings(), g, 1)
    np.testing.assert_allclose(first.upstream.grad, g1, atol=1e-12)
    assert (first.upstream.layer, first.upstream.layers, first.upstream.next_text) == (
        1,
        2,
        stages[1].spec.text,
    )
    want_x, want_w = brute_conv(x, kernel, g1 * (y1 > 0) if relu else g1, s, p)
    whole = backward(x, stages, Settings(), g)
    np.testing.assert_allclose(input_grad(first), want_x, atol=1e-12)
    np.testing.assert_allclose(input_grad(first), whole.grad_input, atol=1e-12)
    for step in (s for s in first.steps if s.grad == "kernel"):
        assert step.value == pytest.approx(want_w[step.position], abs=1e-12)
    second = every_cell(x, stages, Settings(), g, 2)
    assert second.upstream.next_text is None and second.kind == TraceKind.POOL
    np.testing.assert_allclose(input_grad(second), g1, atol=1e-12)


def test_pool_then_conv_traces_the_pool_with_the_conv_input_gradient() -> None:
    x = MAXPOOL_4X4[:, :, None].astype(float)
    stages = [pool(PoolKind.MAX, 2, 1), conv(CROSS[:2, :2])]
    y1 = ops.pool(x, PoolKind.MAX, (2, 2), stride=(1, 1))
    g = np.array([[[1.0], [2.0]], [[3.0], [4.0]]])
    g1, _ = brute_conv(y1, CROSS[:2, :2].astype(float), g, 1, 0)
    t = every_cell(x, stages, Settings(), g, 1)
    np.testing.assert_allclose(t.upstream.grad, g1)
    np.testing.assert_allclose(input_grad(t), brute_max(x, g1, 2, 1, 0, 1))
    np.testing.assert_allclose(input_grad(t), backward(x, stages, Settings(), g).grad_input)


def test_a_three_layer_pipeline_backpropagates_through_the_middle() -> None:
    relu = Stage(Spec("relu", Pointwise("relu")))
    stages = [conv([[1, -1], [-1, 1]]), relu, pool(PoolKind.MAX, 2, 2)]
    t = backward_trace(UFLDL, stages, Settings(), layer=1, at=[(0, 0)])
    doc = backward_trace_json(t)
    assert doc["layer"] == 1 and doc["upstream"]["from_layer"] == 2
    assert doc["upstream"]["from_spec"] == "relu"
    y = ops.correlate(UFLDL, np.array([[1, -1], [-1, 1]]))
    g = brute_max(np.maximum(y, 0), np.ones((2, 2, 1)), 2, 2, 0, 1) * (y > 0)
    np.testing.assert_array_equal(t.upstream.grad, g)
