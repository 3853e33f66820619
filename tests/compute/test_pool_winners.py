"""`pool_winners`, the one home of max pooling's tie rule: against a brute-force reading
of the rule (the first NaN of a window, else the first of its largest values, padding
being −inf), at every rank, for small and whole-map windows; the gradient, the backward
steps and the forward steps all route to or mark that cell."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convcalc.calc.choices import PoolKind
from convcalc.calc.grammar import parse_spec
from convcalc.compute.backward_traces import backward_trace
from convcalc.compute.gradients import global_pool_backward, pool_backward_nd, pool_winners
from convcalc.compute.pipeline import Settings, Stage
from convcalc.compute.traces import PoolStep, trace
from convcalc.compute.windows import pool_axes_nd
from convcalc.errors import ConvcalcError


def brute_winner(values: list[float]) -> int:
    """The rule read plainly: the first NaN if there is one, else the first maximum."""
    for t, v in enumerate(values):
        if np.isnan(v):
            return t
    return values.index(max(values))


def brute_winners(x: Any, axes: Any) -> Any:
    """Every window's winning tap, window by window, tap by tap in row-major order."""
    *spatial, channels = x.shape
    out = np.zeros((*(a.size for a in axes), channels), dtype=np.int64)
    for o in itertools.product(*(range(a.size) for a in axes)):
        for c in range(channels):
            values = []
            for tap in itertools.product(*(range(a.kernel) for a in axes)):
                cell = tuple(
                    i * a.stride + t * a.dilation - a.pad_lo
                    for i, t, a in zip(o, tap, axes, strict=True)
                )
                inside = all(0 <= i < n for i, n in zip(cell, spatial, strict=True))
                values.append(float(x[(*cell, c)]) if inside else -np.inf)
            out[(*o, c)] = brute_winner(values)
    return out


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 3), st.data(), st.booleans(), st.integers(0, 2**32 - 1))
def test_winners_follow_the_rule(rank: int, data: st.DataObject, nan: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    spatial = tuple(data.draw(st.integers(1, 5)) for _ in range(rank))
    size = tuple(data.draw(st.integers(1, n)) for n in spatial)  # up to the whole map
    stride = tuple(data.draw(st.integers(1, 3)) for _ in range(rank))
    padding = tuple(data.draw(st.integers(0, k // 2)) for k in size)
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(rank))
    x = rng.integers(-2, 2, (*spatial, 2)).astype(float)  # few values: many ties
    if nan:
        x[rng.random(x.shape) < 0.2] = np.nan
    try:
        axes = pool_axes_nd(
            x.shape, size, stride=stride, padding=padding, dilation=dilation, ceil=True
        )
    except ConvcalcError:
        assume(False)
    np.testing.assert_array_equal(pool_winners(x, axes), brute_winners(x, axes))


def test_a_tie_goes_to_the_first_tap_and_a_nan_beats_every_number() -> None:
    x = np.array([[3.0, 3.0], [1.0, 3.0]])[..., None]
    axes = pool_axes_nd(x.shape, (2, 2), padding=(0, 0), dilation=(1, 1))
    assert pool_winners(x, axes).tolist() == [[[0]]]
    x[1, 0, 0] = x[1, 1, 0] = np.nan
    assert pool_winners(x, axes).tolist() == [[[2]]]
    padded = pool_axes_nd((1, 1, 1), (2, 2), stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    assert pool_winners(np.full((1, 1, 1), -5.0), padded).ravel().tolist() == [3, 2, 1, 0]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([1, 2, 3]), st.booleans(), st.integers(0, 2**32 - 1))
def test_gradient_backward_steps_and_forward_steps_agree_on_the_winner(
    rank: int, nan: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(-1, 2, (5,) * rank + (2,)).astype(float)
    if nan:
        x[rng.random(x.shape) < 0.1] = np.nan
    spec = {1: "maxpool1d", 2: "maxpool", 3: "maxpool3d"}[rank] + ":3,s=2,p=1"
    stage, config = Stage(parse_spec(spec)), Settings(rank=rank)
    geometry = {"stride": (2,) * rank, "padding": (1,) * rank, "dilation": (1,) * rank}
    axes = pool_axes_nd(x.shape, (3,) * rank, **geometry)
    winners = pool_winners(x, axes)
    cells = {}  # window and channel -> the input cell of its winning tap
    for o in np.ndindex(*winners.shape[:-1]):
        for c in range(2):
            tap = np.unravel_index(int(winners[(*o, c)]), (3,) * rank)
            cells[(o, c)] = tuple(i * 2 + int(t) - 1 for i, t in zip(o, tap, strict=True))
    g = rng.integers(1, 4, winners.shape).astype(float)
    want = np.zeros(x.shape)
    for (o, c), cell in cells.items():
        want[(*cell, c)] += g[(*o, c)]
    routed = pool_backward_nd(x, PoolKind.MAX, (3,) * rank, g, **geometry)
    np.testing.assert_array_equal(routed, want)
    forward = trace(x, [stage], config, limit=10**3)
    for s in forward.steps:
        assert isinstance(s, PoolStep) and s.argmax is not None
        marked = tuple(i + t for i, t in zip(s.origin, s.argmax, strict=True))
        assert marked == cells[(s.position, s.channel)]
    every = list(np.ndindex(*x.shape[:-1]))
    steps = backward_trace(x, [stage], config, g, at=every, limit=len(every)).steps
    for s in steps:
        for w in s.windows:
            assert s.channel is not None and w.winner == cells[(w.output, s.channel)]


def test_global_max_pooling_uses_the_same_rule() -> None:
    x = np.array([[1.0, 4.0, 4.0], [4.0, 0.0, np.nan], [2.0, np.nan, 1.0]])
    both = np.stack([x, np.nan_to_num(x, nan=0.0)], axis=-1)  # NaN wins; else the first 4
    grad = global_pool_backward(both, PoolKind.MAX, np.array([[[2.0, 3.0]]]))
    assert np.argwhere(grad[..., 0]).tolist() == [[1, 2]] and grad[1, 2, 0] == 2
    assert np.argwhere(grad[..., 1]).tolist() == [[0, 1]] and grad[0, 1, 1] == 3
    volume = np.zeros((2, 2, 2, 1))
    volume[1, 0, 1, 0] = volume[1, 1, 0, 0] = 7
    routed = global_pool_backward(volume, PoolKind.MAX, np.ones(1), rank=3)
    assert np.argwhere(routed[..., 0]).tolist() == [[1, 0, 1]]
