"""Stacks: shapes, parameters, MACs, receptive fields, presets."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convcalc.calc.choices import PoolKind
from convcalc.calc.evaluation import evaluate
from convcalc.calc.layers import Conv, Pool, Spec
from convcalc.calc.network import conv_fan_in
from convcalc.calc.presets import PRESETS, load_network
from convcalc.calc.sequence import parse_specs
from convcalc.calc.sizes import parse_shape
from convcalc.errors import ConvcalcError


def run(shape: str, *specs: str):
    parsed = parse_specs(specs)
    return evaluate(parsed, parse_shape(shape, 2))


@pytest.mark.parametrize(
    ("name", "params", "macs_g"),
    [
        ("alexnet", 61_100_840, None),
        ("vgg16", 138_357_544, 15.47),
        ("resnet18", 11_689_512, 1.81),
        ("resnet50", 25_557_032, 4.09),
        ("mobilenetv2", 3_504_872, 0.30),
    ],
)
def test_preset_totals_match_torchvision(name, params, macs_g):
    result = evaluate(load_network(name), parse_shape("224x224x3"))
    assert result.total_params == params
    assert result.output.as_list() == [1000]
    if macs_g is not None:
        assert result.total_macs / 1e9 == pytest.approx(macs_g, rel=0.02)


def test_every_preset_loads():
    for name in PRESETS:
        assert load_network(name)


def test_batchnorm_statistics_are_buffers_not_params():
    result = run("8x8x3", "conv:4,3,bias=no", "bn")
    assert result.layers[1].params == 8
    assert result.layers[1].buffers == 8
    assert result.total_params == 3 * 3 * 3 * 4 + 8
    assert result.total_buffers == 8


def test_vgg16_receptive_field_at_last_pool_is_212():
    result = evaluate(load_network("vgg16"), parse_shape("224x224x3"))
    last_pool = [layer for layer in result.layers if layer.op == "maxpool"][-1]
    assert last_pool.receptive_field.size == (212, 212)
    assert last_pool.output.as_list() == [7, 7, 512]


def test_lenet5_classic_shapes():
    result = evaluate(load_network("lenet5"), parse_shape("32x32x3"))
    shapes = [layer.output.as_list() for layer in result.layers]
    assert shapes == [[28, 28, 6], [14, 14, 6], [10, 10, 16], [5, 5, 16], [120], [84], [10]]


@pytest.mark.parametrize(
    ("shape", "specs", "output", "params"),
    [
        ("32x32x3", ["conv:6,5"], [28, 28, 6], 456),
        ("28x28x6", ["conv:10,5"], [24, 24, 10], 1510),
        ("32x32x3", ["conv:10,5,p=2"], [32, 32, 10], 760),
        ("100x100x3", ["conv:10,10,bias=no"], [91, 91, 10], 3000),
        ("1000x1000", ["conv:10,3,bias=no"], [998, 998, 10], 90),
        ("227x227x3", ["conv:96,11,s=4"], [55, 55, 96], 34_944),
        ("5x5x3", ["conv:2,3,s=2,p=1"], [3, 3, 2], 56),
        ("28x28x32", ["maxpool:2,p=same"], [14, 14, 32], 0),
    ],
)
def test_classic_layers(shape, specs, output, params):
    result = run(shape, *specs)
    assert result.output.as_list() == output
    assert result.total_params == params


def test_macs_count_multiply_accumulates():
    result = run("32x32x3", "conv:6,5", "fc:10")
    assert result.layers[0].macs == 28 * 28 * 6 * 5 * 5 * 3
    assert result.layers[1].macs == 28 * 28 * 6 * 10


def test_transposed_macs_count_input_positions():
    result = run("4x4x8", "deconv:3,3,s=2")
    assert result.output.as_list() == [9, 9, 3]
    assert result.layers[0].macs == 4 * 4 * 8 * 3 * 3 * 3
    assert result.layers[0].params == 8 * 3 * 3 * 3 + 3


def test_grouped_and_depthwise_params():
    assert run("8x8x32", "conv:64,3,g=4,bias=no").total_params == 3 * 3 * 8 * 64
    assert run("8x8x32", "dwconv:3,bias=no").total_params == 3 * 3 * 32
    assert run("8x8x32", "dwconv:3,m=2").output.as_list() == [6, 6, 64]


def test_conv_fan_in_is_the_weights_of_one_filter():
    assert conv_fan_in((5, 5), 3) == 5 * 5 * 3
    assert conv_fan_in((3, 3), 32, groups=4) == 3 * 3 * 8
    assert run("8x8x32", "conv:64,3,g=4").total_params == conv_fan_in((3, 3), 32, 4) * 64 + 64
    # a grouped transposed convolution holds the weights of the C_in to C_out convolution
    deconv = run("4x4x8", "deconv:4,3,s=2,g=2").layers[0]
    assert deconv.params == 3 * 3 * 8 * 4 // 2 + 4
    assert deconv.macs == 4 * 4 * conv_fan_in((3, 3), 8, 2) * 4


def test_per_layer_numbers_add_up_to_totals():
    result = evaluate(load_network("resnet50"), parse_shape("224x224x3"))
    assert sum(layer.params for layer in result.layers) == result.total_params
    assert sum(layer.macs for layer in result.layers) == result.total_macs


def test_conv_after_fc_is_an_error_naming_the_layer():
    with pytest.raises(ConvcalcError, match=r"argument 2 \(conv:6,5\).*flat vector"):
        run("32x32x3", "fc:10", "conv:6,5")


def test_strict_fails_on_inexact_fit():
    with pytest.raises(ConvcalcError, match="not exact"):
        evaluate(parse_specs(["conv:1,3,s=2"]), parse_shape("8x8"), strict=True)
    assert evaluate(parse_specs(["conv:1,3,s=2"]), parse_shape("7x7"), strict=True)


def test_inexact_note_says_how_many_rows_are_lost():
    result = run("8x8", "conv:1,3,s=2")
    assert not result.layers[0].exact
    assert any("1 input row/column never covered" in n for n in result.layers[0].notes)


def test_three_d_and_one_d_stacks():
    result = evaluate(parse_specs(["conv3d:8,3"]), parse_shape("16x32x32x3", 3))
    assert result.output.as_list() == [14, 30, 30, 8]
    assert result.total_params == 27 * 3 * 8 + 8
    result = evaluate(parse_specs(["conv1d:4,5,s=2"]), parse_shape("100x16", 1))
    assert result.output.as_list() == [48, 4]


# -- receptive field against a brute-force backward pass ----------------------

layer_st = st.tuples(
    st.sampled_from(["conv", "pool"]),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(0, 2),
    st.integers(1, 2),
)


def backward_field(layers, index):
    """Input positions (padding included) that output `index` of the stack depends on."""
    positions = {index}
    for _, k, s, p, d in reversed(layers):
        positions = {o * s - p + t * d for o in positions for t in range(k)}
    return min(positions), max(positions)


@given(st.lists(layer_st, min_size=1, max_size=4))
def test_receptive_field_matches_brute_force(layers):
    layers = [
        (kind, k, s, min(p, k // 2) if kind == "pool" else p, d) for kind, k, s, p, d in layers
    ]
    specs = [
        Spec("", Conv(1, (k,), (s,), (p,), (d,), rank=1))
        if kind == "conv"
        else Spec("", Pool(PoolKind.MAX, (k,), (s,), (p,), (d,)))
        for kind, k, s, p, d in layers
    ]
    try:
        result = evaluate(specs, parse_shape("200", 1))
    except ConvcalcError:
        return
    rf = result.layers[-1].receptive_field
    lo, hi = backward_field(layers, 0)
    assert rf.size[0] == hi - lo + 1
    assert rf.start[0] == (lo + hi) / 2
    if result.output.spatial[0] > 1:
        lo1, _ = backward_field(layers, 1)
        assert rf.jump[0] == lo1 - lo


def test_layers_are_frozen_values():
    import dataclasses

    a, b = parse_specs(["conv:6,5,s=2"])[0].layer, parse_specs(["conv:6,5,s=2"])[0].layer
    assert a == b and hash(a) == hash(b) and a != parse_specs(["conv:6,3"])[0].layer
    assert repr(a).startswith("Conv(out=6, kernel=(5,), stride=(2,)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.out = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.extra = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        del a.kernel
    assert dataclasses.replace(a, out=3).out == 3 and a.out == 6
