"""The GoogLeNet, Inception-v3 and U-Net presets against their published figures.

GoogLeNet and Inception-v3 are checked against torchvision 0.28 (torch 2.13), with their
auxiliary classifiers off; the figures were recorded with

    /work/torchvenv/bin/python tools/check_presets_against_torch.py googlenet inception_v3

which printed (convcalc / torch):

    | googlenet | 224 | 6,624,904 / 6,624,904 | 1,498,376,192 / 1,498,376,192 (+0.00%) | ...
    | inception_v3 | 299 | 23,834,568 / 23,834,568 | 5,713,216,096 / 5,713,216,096 (+0.00%) | ...

(torch's MACs are torch.utils.flop_counter's FLOPs / 2). U-Net has no torchvision model:
its parameters and output shape are the paper's (Ronneberger et al. 2015), and its MACs
were recorded with ``convcalc shape 572x572x1 --net unet --json``.
"""

from __future__ import annotations

import pytest

from convcalc.calc.evaluation import evaluate
from convcalc.calc.presets import load_network
from convcalc.calc.sizes import parse_shape
from tests.conftest import run


def totals(name: str, shape: str):
    return evaluate(load_network(name), parse_shape(shape))


@pytest.mark.parametrize(
    ("name", "shape", "params", "macs", "output"),
    [
        ("googlenet", "224x224x3", 6_624_904, 1_498_376_192, [1000]),
        ("inception_v3", "299x299x3", 23_834_568, 5_713_216_096, [1000]),
        ("unet", "572x572x1", 31_030_658, 150_428_424_448, [388, 388, 2]),
    ],
)
def test_preset_matches_published_params_macs_and_output(name, shape, params, macs, output):
    result = totals(name, shape)
    assert result.total_params == params
    assert result.total_macs == macs
    assert result.output.as_list() == output


@pytest.mark.parametrize("name", ["GoogLeNet", "inception-v3", "Inception_V3", "UNet"])
def test_presets_load_under_torchvision_spellings(name):
    assert load_network(name)


def test_googlenet_inception_modules_give_the_paper_channel_counts():
    result = totals("googlenet", "224x224x3")
    modules = [str(layer.output) for layer in result.layers if layer.spec.startswith("(")]
    assert modules == [
        "28x28x256", "28x28x480",
        "14x14x512", "14x14x512", "14x14x512", "14x14x528", "14x14x832",
        "7x7x832", "7x7x1024",
    ]  # fmt: skip


def test_googlenet_max_pools_round_up_as_torchvision():
    result = totals("googlenet", "224x224x3")
    pools = [str(layer.output) for layer in result.layers if layer.spec.startswith("maxpool")]
    assert pools == ["56x56x64", "28x28x192", "14x14x480", "7x7x832"]


def test_inception_v3_mixed_blocks_shapes():
    result = totals("inception_v3", "299x299x3")
    mixed = [str(layer.output) for layer in result.layers if layer.spec.startswith("(")]
    assert mixed == [
        "35x35x256", "35x35x288", "35x35x288",
        "17x17x768", "17x17x768", "17x17x768", "17x17x768", "17x17x768",
        "8x8x1280", "8x8x2048", "8x8x2048",
    ]  # fmt: skip


def test_inception_v3_keeps_the_adaptive_pool_at_another_size():
    # torchvision's Inception3 takes any input from 75x75 up; the head is always 2048 -> 1000
    result = totals("inception_v3", "342x342x3")
    assert result.output.as_list() == [1000]
    assert result.total_params == 23_834_568


def test_unet_crops_the_contracting_path_at_each_level():
    result = totals("unet", "572x572x1")
    merges = [str(layer.output) for layer in result.layers if layer.spec.startswith("concat:")]
    assert merges == ["56x56x1024", "104x104x512", "200x200x256", "392x392x128"]
    bottom = [layer for layer in result.layers if layer.spec == "conv:1024,3"][-1]
    assert str(bottom.output) == "28x28x1024"


def test_unet_on_the_command_line():
    result = run("shape", "572x572x1", "--net", "unet", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "388x388x2"
