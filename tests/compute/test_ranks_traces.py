"""`apply --steps` at rank 1 (signals) and 3 (volumes): every traced value equals the
pipeline's output, every window equals the padded input sliced by hand, and the JSON
generalises the 2-D document (index lists for positions)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from convcalc.calc.choices import ChannelMode, PadMode
from convcalc.calc.grammar import parse_spec
from convcalc.compute.pipeline import Settings, Stage, run
from convcalc.compute.traces import ConvStep, PoolStep, trace, trace_json
from convcalc.errors import ConvcalcError


def stage(text: str, *kernels: Any, bias: Any = None) -> Stage:
    return Stage(parse_spec(text), tuple(np.asarray(k, float) for k in kernels), bias)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


CASES = [
    (1, (13, 2), "conv1d:k=a,s=2,p=2,d=2", [(3,), (3,)], ChannelMode.EACH, (0.5, -1.0)),
    (1, (13, 2), "conv1d:k=a,p=same", [(4, 2)], ChannelMode.SUM, None),
    (1, (6, 1), "deconv1d:k=a,s=3,p=1,op=2", [(3,)], ChannelMode.EACH, (1.0,)),
    (1, (13, 2), "maxpool1d:3,s=2,p=1,ceil", [], ChannelMode.EACH, None),
    (1, (13, 2), "avgpool1d:4,s=3,p=2", [], ChannelMode.EACH, None),
    (3, (4, 5, 6, 2), "conv3d:k=a,s=2x1x2,p=1,d=1x2x1", [(2, 3, 2, 2)], ChannelMode.SUM, (2.0,)),
    (3, (3, 4, 3, 1), "deconv3d:k=a,s=2,p=1", [(2, 3, 2)], ChannelMode.EACH, None),
    (3, (4, 5, 6, 2), "maxpool3d:2x3x2,s=2,p=1", [], ChannelMode.EACH, None),
    (3, (4, 5, 6, 2), "avgpool3d:3,s=2,p=1,ceil", [], ChannelMode.EACH, None),
    (3, (4, 5, 6, 2), "gmp", [], ChannelMode.EACH, None),
]


@pytest.mark.parametrize(("rank", "shape", "spec", "kernels", "mode", "bias"), CASES)
@pytest.mark.parametrize("pad_mode", [PadMode.ZERO, PadMode.REFLECT])
def test_every_step_equals_the_pipeline(rank, shape, spec, kernels, mode, bias, pad_mode):
    r = rng(1)
    x = r.integers(-4, 5, size=shape).astype(float)
    stages = [stage(spec, *(r.integers(-2, 3, size=k) for k in kernels), bias=bias)]
    config = Settings(rank=rank, channels=mode, pad_mode=pad_mode)
    out = run(x, stages, config).output
    t = trace(x, stages, config, limit=200)
    assert t.rank == rank and t.output_shape == out.shape and t.input_shape == x.shape
    assert len(t.steps) == t.total_positions * out.shape[-1]
    for s in t.steps:
        channel = s.output_channel if isinstance(s, ConvStep) else s.channel
        assert s.value == out[(*s.position, channel)]
    doc = json.loads(json.dumps(trace_json(t), allow_nan=False))
    assert doc["rank"] == rank and len(doc["steps"][0]["position"]) == rank


def test_1d_window_is_the_padded_signal_sliced_by_hand() -> None:
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
    t = trace(x, [stage("conv1d:k=w,s=2,p=2,d=2", [1, 0, -1])], Settings(rank=1), at=[(0,), (3,)])
    padded = np.pad(x, 2)
    for s in t.steps:
        assert isinstance(s, ConvStep)
        (i,) = s.position
        part = s.channels[0]
        assert part.window.tolist() == padded[2 * i : 2 * i + 5 : 2].tolist()
        assert part.padding.tolist() == [not 2 <= 2 * i + 2 * k < 9 for k in range(3)]
        assert s.origin == (2 * i - 2,)
    doc = trace_json(t)
    assert doc["steps"][0]["channels"][0] == {
        "channel": 0,
        "window": [0, 3, 4],
        "kernel": [1, 0, -1],
        "sum": -4,
        "padding_mask": [True, False, False],
    }
    assert doc["steps"][1]["position"] == [3] and doc["steps"][1]["origin"] == [4]


def test_3d_max_window_argmax_and_json_nest_by_depth() -> None:
    x = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    t = trace(x, [stage("maxpool3d:2,p=1")], Settings(rank=3), at=[(1, 1, 2)])
    (s,) = t.steps
    assert isinstance(s, PoolStep)
    assert s.origin == (1, 1, 3) and s.argmax == (0, 1, 0)
    assert s.window[0].tolist() == [[19, -np.inf], [23, -np.inf]]
    assert s.window[1].tolist() == [[-np.inf] * 2] * 2
    doc = trace_json(t)["steps"][0]
    assert doc["window"] == [[[19, None], [23, None]], [[None, None], [None, None]]]
    assert doc["argmax"] == [0, 1, 0] and doc["value"] == 23


def test_positions_default_limit_and_validation() -> None:
    x = rng(2).normal(size=(3, 4, 5))
    stages = [stage("conv3d:k=w,p=1", np.ones((3, 3, 3)))]
    t = trace(x, stages, Settings(rank=3))
    assert t.positions == ((0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3)) and t.omitted == 56
    with pytest.raises(
        ConvcalcError,
        match=r"\(3, 0, 0\) is outside the 3x4x5 output; valid: "
        "slices 0 to 2, rows 0 to 3, columns 0 to 4",
    ):
        trace(x, stages, Settings(rank=3), at=[(3, 0, 0)])
    with pytest.raises(ConvcalcError, match="valid: positions 0 to 9"):
        trace(np.ones(10), [stage("conv1d:k=w,p=1", [1, 1, 1])], Settings(rank=1), at=[(1, 1)])


def test_a_later_layer_is_traced_on_the_pipeline_so_far() -> None:
    x = rng(3).normal(size=(12, 1))
    stages = [stage("conv1d:k=w", [1, 2, 1]), stage("relu"), stage("maxpool1d:2")]
    t = trace(x, stages, Settings(rank=1), layer=3)
    out = run(x, stages, Settings(rank=1)).output
    assert [s.value for s in t.steps] == out[:, 0].tolist()
    assert t.input_shape == (10, 1)
