"""`backward_trace` at rank 1 (signals) and 3 (volumes): every traced gradient value
equals `convcalc.compute.gradients.backward`'s (itself checked against brute-force sums,
finite differences and PyTorch), its terms add up to it, and the JSON generalises the
2-D document."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convcalc.calc.choices import Activation, ChannelMode, PadMode, PoolKind, TraceKind
from convcalc.calc.grammar import parse_spec
from convcalc.compute.backward_traces import BackwardTrace, backward_trace, backward_trace_json
from convcalc.compute.gradients import backward
from convcalc.compute.pipeline import Settings, Stage, run
from convcalc.errors import ConvcalcError


def stage(text: str, *kernels: Any, activation: Activation = Activation.NONE) -> Stage:
    return Stage(parse_spec(text), tuple(np.asarray(k, float) for k in kernels), None, activation)


def runs_or_skip(x: Any, stages: list[Stage], config: Settings) -> Any:
    """The pipeline's output, or skip a geometry the forward pass refuses."""
    try:
        return run(x, stages, config).output
    except ConvcalcError:
        assume(False)


def traced_all(
    x: Any, stages: list[Stage], config: Settings, g: Any, layer: int = 1
) -> BackwardTrace:
    """The trace of every kernel tap and input cell of layer ``layer``."""
    xa = run(x, stages[: layer - 1], config).output if layer > 1 else np.asarray(x)
    spatial = xa.shape[: config.rank]
    kernels = stages[layer - 1].kernels
    taps = set(np.ndindex(*kernels[0].shape[: config.rank])) if kernels else set()
    at = sorted(set(itertools.product(*map(range, spatial))) | taps)
    t = backward_trace(x, stages, config, g, layer=layer, at=at, limit=len(at))
    assert t.rank == config.rank and t.input_omitted == 0 and t.kernel_omitted == 0
    return t


def assert_equals_backward(t: BackwardTrace, grad_input: Any, kernels: Any = ()) -> None:
    """Each step's terms add up to its value, which is the computed gradient's."""
    seen = np.zeros(np.shape(grad_input), dtype=bool)
    for s in t.steps:
        assert s.value == pytest.approx(math.fsum(a * b for a, b in s.terms), abs=1e-9)
        assert len(s.position) == t.rank
        if s.grad == "input":
            cell = (*s.position, s.channel)
            assert s.value == pytest.approx(float(grad_input[cell]), abs=1e-9)
            seen[cell] = True
        else:
            assert s.filter is not None
            tap = s.position if s.channel is None else (*s.position, s.channel)
            assert s.value == pytest.approx(float(kernels[s.filter][tap]), abs=1e-9)
    assert seen.all()  # every input cell and channel was traced


def shape_of(rank: int, data: st.DataObject, lo: int, hi: int) -> tuple[int, ...]:
    return tuple(data.draw(st.integers(lo, hi)) for _ in range(rank))


def per_axis(values: tuple[int, ...]) -> str:
    return "x".join(map(str, values))


# -- convolutions ------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from([1, 3]),
    st.data(),
    st.integers(1, 2),
    st.integers(1, 2),
    st.sampled_from(list(PadMode)),
    st.sampled_from(list(ChannelMode)),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_conv_steps_equal_the_gradient(
    rank: int,
    data: st.DataObject,
    channels: int,
    filters: int,
    pad_mode: PadMode,
    mode: ChannelMode,
    deep: bool,
    flip: bool,
    relu: bool,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    lo, hi = (3, 9) if rank == 1 else (2, 4)
    spatial = shape_of(rank, data, lo, hi)
    size = shape_of(rank, data, 1, 3 if rank == 1 else 2)
    stride, dilation = shape_of(rank, data, 1, 2), shape_of(rank, data, 1, 2)
    padding = shape_of(rank, data, 0, 2 if rank == 1 else 1)
    x = rng.integers(-3, 4, (*spatial, channels)).astype(float)
    depth = (channels,) if deep and mode == ChannelMode.SUM else ()
    kernels = [rng.integers(-2, 3, (*size, *depth)) for _ in range(filters)]
    spec = f"conv{rank}d:k=a,s={per_axis(stride)},p={per_axis(padding)},d={per_axis(dilation)}"
    act = Activation.RELU if relu else Activation.NONE
    stages = [stage(spec, *kernels, activation=act)]
    config = Settings(rank=rank, pad_mode=pad_mode, channels=mode, flip=flip)
    y = runs_or_skip(x, stages, config)
    g = rng.integers(-2, 3, y.shape).astype(float)
    t = traced_all(x, stages, config, g)
    want = backward(x, stages, config, g)
    assert want.layers[0] is not None
    assert t.kind == TraceKind.CONV and t.output_shape == y.shape
    assert_equals_backward(t, want.grad_input, want.layers[0].kernels)


# -- pooling ------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from([1, 3]),
    st.data(),
    st.sampled_from([PoolKind.MAX, PoolKind.AVG]),
    st.integers(1, 2),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_pool_steps_equal_the_gradient(
    rank: int,
    data: st.DataObject,
    kind: PoolKind,
    channels: int,
    ceil: bool,
    exclude: bool,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    lo, hi = (2, 9) if rank == 1 else (2, 4)
    spatial = shape_of(rank, data, lo, hi)
    size = shape_of(rank, data, 1, 3)
    stride, padding = shape_of(rank, data, 1, 2), shape_of(rank, data, 0, 1)
    dilation = shape_of(rank, data, 1, 2) if kind == PoolKind.MAX else (1,) * rank
    assume(all(2 * p <= k for p, k in zip(padding, size, strict=True)))
    x = rng.integers(-2, 3, (*spatial, channels)).astype(float)  # small values: many ties
    spec = (
        f"{kind}pool{rank}d:{per_axis(size)},s={per_axis(stride)},p={per_axis(padding)},"
        f"d={per_axis(dilation)}" + (",ceil" if ceil else "")
    )
    stages = [stage(spec)]
    config = Settings(rank=rank, exclude_pad=exclude)
    y = runs_or_skip(x, stages, config)
    g = rng.integers(-3, 4, y.shape).astype(float)
    t = traced_all(x, stages, config, g)
    assert (t.kind, t.pool, t.output_shape) == (TraceKind.POOL, kind, y.shape)
    assert_equals_backward(t, backward(x, stages, config, g).grad_input)
    for s in t.steps:  # max pooling: a term is 1 exactly where the window names this cell
        for (_, factor), w in zip(s.terms, s.windows, strict=True):
            if kind == PoolKind.MAX:
                assert w.winner is not None and len(w.output) == len(w.winner) == rank
                assert factor == (w.winner == s.position)


@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("name", ["gmp", "gap"])
def test_global_pooling_steps_equal_the_gradient(rank: int, name: str) -> None:
    rng = np.random.default_rng(rank)
    x = rng.integers(-2, 3, (5, 2) if rank == 1 else (2, 3, 2, 2)).astype(float)
    stages, config = [stage(name)], Settings(rank=rank)
    g = np.array([2.0, -1.0]).reshape((1,) * rank + (2,))
    t = traced_all(x, stages, config, g)
    assert t.kind == TraceKind.GLOBAL_POOL and t.output_shape == (1,) * rank + (2,)
    assert_equals_backward(t, backward(x, stages, config, g).grad_input)


# -- a two-layer pipeline --------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from([1, 3]),
    st.sampled_from([PoolKind.MAX, PoolKind.AVG]),
    st.integers(1, 2),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_conv_then_pool_each_layer_equals_the_chain_rule(
    rank: int, kind: PoolKind, stride: int, relu: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (9, 2) if rank == 1 else (3, 4, 4, 2)).astype(float)
    kernels = [rng.integers(-1, 2, (3, 2) if rank == 1 else (2, 2, 2, 2)) for _ in range(2)]
    act = Activation.RELU if relu else Activation.NONE
    stages = [
        stage(f"conv{rank}d:k=a,p=1,s={stride}", *kernels, activation=act),
        stage(f"{kind}pool{rank}d:2,s=1"),
    ]
    config = Settings(rank=rank, channels=ChannelMode.SUM)
    out = runs_or_skip(x, stages, config)
    g = rng.integers(-2, 3, out.shape).astype(float)
    whole = backward(x, stages, config, g)
    assert whole.layers[0] is not None
    first = traced_all(x, stages, config, g, layer=1)
    assert (first.upstream.layer, first.upstream.next_text) == (1, stages[1].spec.text)
    assert_equals_backward(first, whole.grad_input, whole.layers[0].kernels)
    y1 = run(x, stages[:1], config).output
    second = traced_all(x, stages, config, g, layer=2)
    assert second.upstream.next_text is None and second.input_shape == y1.shape
    assert_equals_backward(second, backward(y1, stages[1:], config, g).grad_input)
    np.testing.assert_array_equal(
        first.upstream.grad, backward(y1, stages[1:], config, g).grad_input
    )


# -- positions and JSON -----------------------------------------------------------------


def test_default_positions_limit_and_refusals_at_rank_3() -> None:
    x = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    stages, config = [stage("conv3d:k=a", np.ones((2, 2, 2)))], Settings(rank=3)
    t = backward_trace(x, stages, config)
    assert [s.position for s in t.steps if s.grad == "kernel"] == list(np.ndindex(2, 2, 2))
    assert [s.position for s in t.steps if s.grad == "input"] == list(np.ndindex(2, 3, 4))
    t = backward_trace(x, stages, config, at=[(1, 2, 3), (0, 1, 1)], limit=1)
    assert [(s.grad, s.position) for s in t.steps] == [("kernel", (0, 1, 1)), ("input", (1, 2, 3))]
    with pytest.raises(
        ConvcalcError,
        match=r"\(2, 0, 0\) is outside both the 2x2x2 kernel and "
        r"the 2x3x4 input; valid: slices 0 to 1, rows 0 to 2, columns 0 to 3",
    ):
        backward_trace(x, stages, config, at=[(2, 0, 0)])
    with pytest.raises(
        ConvcalcError,
        match=r"position \(1, 1\) has 2 indices but the layer has "
        r"3 spatial axes; valid: 3 indices \(slice, row, column\)",
    ):
        backward_trace(x, stages, config, at=[(1, 1)])
    signal = [stage("maxpool1d:2")]
    with pytest.raises(
        ConvcalcError, match=r"\(9\) is outside the input of 9; valid: positions 0 to 8$"
    ):
        backward_trace(np.arange(9.0), signal, Settings(rank=1), at=[(9,)])


def test_json_has_the_rank_and_index_lists() -> None:
    x = np.array([0, 0, 1, 5, 1, 0, 0, 3, 0], dtype=float)
    stages = [stage("conv1d:k=a,p=1", [1, 0, -1]), stage("maxpool1d:2")]
    t = backward_trace(x, stages, Settings(rank=1), at=[(2,)])
    doc = json.loads(json.dumps(backward_trace_json(t), allow_nan=False))
    assert doc["rank"] == 1 and doc["input_shape"] == [9, 1] and doc["output_shape"] == [9, 1]
    # y = 0 −1 −5 0 5 1 −3 0 3: each pair's max wins (0 before −1, 0 after −5 …), 3 is in no pair
    assert doc["upstream"]["values"] == [[v] for v in [1, 0, 0, 1, 1, 0, 0, 1, 0]]
    steps = doc["backward_steps"]
    assert [(s["grad"], s["position"]) for s in steps] == [("kernel", [2]), ("input", [2])]
    pooled = backward_trace_json(backward_trace(x, stages, Settings(rank=1), layer=2, at=[(3,)]))
    assert pooled["backward_steps"][0]["windows"] == [{"output": [1], "winner": [3], "max": 0}]
    assert "rank" not in backward_trace_json(
        backward_trace(np.ones((3, 3)), [stage("maxpool:2")], Settings())
    )
