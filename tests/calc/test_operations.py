"""The arithmetic besides MACs (`shape --ops all`), counted apart."""

from __future__ import annotations

from convcalc.calc.evaluation import evaluate
from convcalc.calc.operations import network_other_ops
from convcalc.calc.sequence import parse_specs
from convcalc.calc.sizes import parse_shape


def ops(shape: str, *texts: str) -> list[int]:
    specs = parse_specs(texts)
    return network_other_ops(evaluate(specs, parse_shape(shape, 2)), specs)


def test_each_kind_by_hand():
    v = 8 * 8 * 4  # the value count of an 8x8x4 tensor
    assert ops("8x8x3", "conv:4,3,p=1", "conv:4,3,p=1,bias=no", "bn", "relu", "identity") == [
        v,
        0,
        2 * v,
        v,
        0,
    ]
    # 2x2 max pool: 3 comparisons per output; average: 3 adds and a divide
    assert ops("8x8x4", "maxpool:2", "avgpool:2") == [3 * 4 * 4 * 4, 4 * 2 * 2 * 4]
    # global average pool: 63 adds and a divide per channel
    assert ops("8x8x4", "gap") == [(64 - 1 + 1) * 4]


def test_merges_count_their_adds_and_multiplies_but_concat_nothing():
    v = 8 * 8 * 4
    added = ops("8x8x4", "( | conv:4,1,bias=no ) add")
    assert added == [v]
    gated = ops("8x8x4", "( | gap conv:4,1,bias=no sigmoid ) mul")
    assert gated == [64 * 4 + 4 + v]  # the pool, the sigmoid on 1x1x4, the gate
    assert ops("8x8x4", "( conv:4,1,bias=no | conv:4,1,bias=no ) concat") == [0]


def test_resnet50_other_operations_add_up_from_its_layer_counts():
    """Element counts of torchvision's ResNet-50 taken with forward hooks: batch norm
    11,113,984 inputs, ReLU 9,608,704 values, max pool 200,704 outputs of a 3x3 window,
    average pool 100,352 inputs, residual adds 5,519,360 values, fc bias 1,000."""
    from convcalc.calc.presets import load_network

    specs = load_network("resnet50")
    total = sum(network_other_ops(evaluate(specs, parse_shape("224x224x3")), specs))
    assert total == 1_000 + 2 * 11_113_984 + 9_608_704 + 8 * 200_704 + 100_352 + 5_519_360
