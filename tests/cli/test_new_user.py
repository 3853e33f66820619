"""What trying convcalc as a new user found (issue 17): silent wrong numbers, sizing
sessions. Each class of bug is tested with at least two instances."""

from __future__ import annotations

import pytest

from convcalc.calc.evaluation import evaluate, placed_layers
from convcalc.calc.sequence import parse_specs
from convcalc.calc.sizes import parse_shape
from tests.conftest import SAMPLES, run, run_json

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
    # 10 -> 7: PyTorch's windows are [0,1], [1,2], [2,4], [4,5], [5,7], [7,8], [8,9]
    uneven = evaluate(parse_specs(["adaptiveavgpool:7"]), parse_shape("10x10x8")).layers[0]
    assert uneven.output.as_list() == [7, 7, 8]
    field = uneven.receptive_field
    assert field is not None and field.size == (3, 3) and field.start == (0.5, 0.5)
    assert "uneven" in uneven.notes[0]


# -- --target: bounded, honest about its ranges, natural answers first -----------------


@pytest.mark.parametrize(
    ("args", "first"),
    [
        (["224", "--target", "112", "-k", "1000000000"], "conv:_,1000000000,s=2,p=499999999"),
        (["1000000000", "--target", "1"], "conv:_,1000000000,s=1000000000"),
        (["224", "--target", "7"], "conv:_,32,s=32"),
        (["7", "--target", "14"], "deconv:_,2,s=2"),
        (["7", "--target", "56"], "deconv:_,8,s=8"),
    ],
)
def test_target_answers_huge_and_far_targets_with_the_natural_layer_first(args, first):
    result = run("shape", *args, "-q", "--limit", "1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == first


@pytest.mark.parametrize("option", ["-s", "-d"])
def test_target_refuses_strides_and_dilations_beyond_its_range(option):
    result = run("shape", "224", "--target", "112", option, "1000000000")
    assert result.exit_code == 2
    assert "from 1 to 4096" in result.stderr


@pytest.mark.parametrize(("n", "target"), [("7", "3"), ("7", "14")])
def test_target_with_transposed_searches_transposed_convolutions_only(n, target):
    doc = run_json("shape", n, "--target", target, "--transposed")
    assert doc["solutions"] and all(s["transposed"] for s in doc["solutions"])
    assert all(s["layer"].startswith("deconv:") for s in doc["solutions"])


@pytest.mark.parametrize("limit", ["1", "3"])
def test_target_json_honours_limit_and_says_how_many_were_found(limit):
    doc = run_json("shape", "224", "--target", "112", "--limit", limit)
    assert len(doc["solutions"]) == int(limit) < doc["found"]


@pytest.mark.parametrize("args", [["7", "-k", "3"], ["224", "--target", "112"]])
def test_quiet_and_json_together_are_refused(args):
    result = run("shape", *args, "-q", "--json")
    assert result.exit_code == 2 and "-q and --format json" in result.stderr


# -- --strict fails where input is lost, not where only padding is left over -----------


@pytest.mark.parametrize("net", ["resnet50", "alexnet", "mobilenetv2"])
def test_strict_accepts_networks_that_leave_only_padding_over(net):
    result = run("shape", "224x224x3", "--net", net, "--strict", "-q")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(("shape", "spec"), [("8x8", "conv:1,3,s=2"), ("7x7", "maxpool:2")])
def test_strict_fails_where_input_is_never_covered(shape, spec):
    result = run("shape", shape, spec, "--strict")
    assert result.exit_code == 2
    assert "never covered" in result.stderr


# -- bad values are exit 2 with one line, never an internal error -----------------------


@pytest.mark.parametrize(
    "args",
    [
        ["9" * 5000, "-k", "3"],
        ["32x32x3", "-k", "3", "-p", "9" * 400],
        ["32x32x3", "conv:6,3,p=" + "9" * 400],
        ["32x32x3", "conv:" + "9" * 400 + ",3"],
        ["32x32x3", "fc:" + "9" * 5000],
    ],
    ids=["size", "padding option", "padding key", "filters", "units"],
)
def test_huge_numbers_are_bad_values(args):
    result = run("shape", *args)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("Error: ") and "internal error" not in result.stderr
    assert len(result.stderr.splitlines()[0]) < 300


@pytest.mark.parametrize(
    ("spec", "suggestion"),
    [
        ("cnv:6,5", "conv"),
        ("maxpol:2", "maxpool"),
        ("conv:6,5,dilaton=2", "dilation"),
        ("maxpool:2,strde=2", "stride"),
    ],
)
def test_unknown_layers_and_keys_get_a_did_you_mean(spec, suggestion):
    result = run("shape", "32x32x3", spec)
    assert result.exit_code == 2
    assert f"did you mean '{suggestion}'?" in result.stderr


@pytest.mark.parametrize("spec", ["dwconv:k=sobel-x", "dwconv:k=1,0;0,1"])
def test_a_depthwise_layer_given_kernel_values_is_a_bad_value(spec):
    result = run("apply", str(SAMPLES / "photo.png"), spec)
    assert result.exit_code == 2
    assert "takes a kernel size" in result.stderr


# -- shell completion, as README documents it -----------------------------------------


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [("convcalc sh", "1", "shape"), ("convcalc apply x --pad-mode ", "4", "reflect")],
)
def test_shell_completion_completes_commands_and_choices(words, cword, expected):
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "COMP_WORDS": words,
        "COMP_CWORD": cword,
        "_CONVCALC_COMPLETE": "bash_complete",
    }
    done = subprocess.run(
        [sys.executable, "-c", "from convcalc.cli.main import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert f"plain,{expected}" in done.stdout.splitlines()
