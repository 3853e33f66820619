"""What trying convcalc as a new user found (issue 17): silent wrong numbers, sizing
sessions. Each class of bug is tested with at least two instances."""

from __future__ import annotations

import pytest

from convcalc.calc.grammar import parse_shape, parse_specs
from convcalc.calc.network import evaluate, placed_layers
from tests.conftest import run, run_json

# -- one number is one axis ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "params", "output"),
    [
        (["784", "fc:128", "fc:10"], 784 * 128 + 128 + 128 * 10 + 10, [10]),
        (["100", "fc:10,bias=no"], 1000, [10]),
        (["7", "maxpool:2"], 0, [3]),
    ],
)
def test_one_number_is_one_axis_in_a_stack(args, params, output):
    doc = run_json("shape", *args)
    assert doc["total_params"] == params
    assert doc["layers"][-1]["output_shape"] == output


@pytest.mark.parametrize("args", [["7", "conv:1,3"], ["224", "--net", "resnet18"]])
def test_one_number_before_2d_layers_is_refused_not_squared(args):
    result = run("shape", *args)
    assert result.exit_code == 2
    assert "is one axis" in result.stderr and f"{args[0]}x{args[0]}" in result.stderr


# -- params compares every convolution -------------------------------------------------


@pytest.mark.parametrize(
    ("net", "convs", "conv_params"),
    [
        ("resnet50", 53, 25_557_032 - 2_049_000 - 53_120),
        ("resnet18", 20, 11_689_512 - 513_000 - 9_600),
        ("mobilenetv2", 52, 3_504_872 - 1_281_000 - 34_112),
    ],
)
def test_params_of_a_network_compares_every_convolution_and_totals_them(net, convs, conv_params):
    doc = run_json("params", "224x224x3", "--net", net)
    assert len(doc["layers"]) == convs
    assert doc["total"]["convolutions"] == convs
    assert doc["total"]["conv_params"] == sum(layer["conv_params"] for layer in doc["layers"])
    assert doc["total"]["conv_params"] == conv_params


def test_params_table_ends_with_the_total():
    result = run("params", "224x224x3", "--net", "resnet18")
    assert result.exit_code == 0
    assert "all 20 convolutions together:" in result.stdout


# -- a block's memory holds the tensors inside it ---------------------------------------


def test_an_inverted_residual_counts_its_expanded_tensors():
    specs = parse_specs(["invres:24,t=6"])
    result = evaluate(specs, parse_shape("56x56x16"))
    expanded, projected = 56 * 56 * 96, 56 * 56 * 24
    # 1x1 expand, bn, 3x3 depthwise, bn (all 96 channels); 1x1 project, bn; no sum (16 != 24)
    assert result.layers[0].memory == 4 * (4 * expanded + 2 * projected)
    texts = [p.text for p in placed_layers(specs, result)]
    assert texts[0] == "invres:24,t=6 › conv:96,1,bias=no"


def test_a_residual_block_counts_its_inner_tensors_and_its_sum():
    specs = parse_specs(["basic:64"])
    result = evaluate(specs, parse_shape("56x56x64"))
    # conv, bn, conv, bn, and the sum with the identity shortcut
    assert result.layers[0].memory == 4 * 5 * 56 * 56 * 64
    assert result.total_memory == result.layers[0].memory


# -- presets keep torchvision's answer on other input sizes (adaptive average pooling) ----


@pytest.mark.parametrize(
    ("net", "shape", "params"),
    [
        ("vgg16", "32x32x3", 138_357_544),
        ("vgg16", "64x64x3", 138_357_544),
        ("alexnet", "256x256x3", 61_100_840),
    ],
)
def test_adaptive_pooling_keeps_the_classifier_size(net, shape, params):
    assert run_json("shape", shape, "--net", net)["total_params"] == params


def test_adaptive_pooling_is_an_exact_pool_where_the_input_divides():
    result = evaluate(parse_specs(["adaptiveavgpool:7"]), parse_shape("14x14x8"))
    layer = result.layers[0]
    assert layer.output.as_list() == [7, 7, 8]
    assert layer.receptive_field is not None and layer.receptive_field.size == (2, 2)
    uneven = evaluate(parse_specs(["adaptiveavgpool:7"]), parse_shape("10x10x8")).layers[0]
    assert uneven.output.as_list() == [7, 7, 8] and uneven.receptive_field is None
    assert "not tracked" in uneven.notes[0]
