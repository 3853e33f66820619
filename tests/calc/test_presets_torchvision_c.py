"""Presets mobilenet_v3_large, efficientnet_b0 and convnext_tiny against torchvision.

Every figure pinned here was recorded from torch 2.13 / torchvision 0.28, no weights
loaded: trainable parameters from ``model.parameters()``, MACs as
``torch.utils.flop_counter.FlopCounterMode``'s FLOPs / 2, batch-norm running
statistics as the ``running_mean`` and ``running_var`` elements. The 224x224x3 rows
come from (in a venv with torch, torchvision and convcalc installed):

    python tools/check_presets_against_torch.py mobilenet_v3_large efficientnet_b0 convnext_tiny

and the other input sizes from the same FlopCounterMode on ``torch.zeros(1, 3, N, N)``.
All MACs agree exactly; so do the parameters. (ConvNeXt's Linear layers run on a
channels-last tensor in torchvision; the preset writes them as the 1x1 convolutions they
equal, with the same parameters and the same MACs.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from convcalc.calc.evaluation import evaluate
from convcalc.calc.presets import PRESETS, load_network
from convcalc.calc.sizes import parse_shape

NAMES = ("mobilenet_v3_large", "efficientnet_b0", "convnext_tiny")
PRESET_DIR = Path(__file__).resolve().parents[2] / "convcalc" / "calc" / "presets"


@pytest.mark.parametrize(
    ("name", "params", "buffers", "macs"),
    [
        ("mobilenet_v3_large", 5_483_032, 24_400, 216_589_760),
        ("efficientnet_b0", 5_288_548, 42_016, 385_814_752),
        ("convnext_tiny", 28_589_128, 0, 4_455_531_264),
    ],
)
def test_totals_at_224_match_torchvision(name, params, buffers, macs):
    result = evaluate(load_network(name), parse_shape("224x224x3"))
    assert result.total_params == params
    assert result.total_buffers == buffers
    assert result.total_macs == macs
    assert result.output.as_list() == [1000]


@pytest.mark.parametrize(
    ("name", "size", "macs"),
    [
        ("mobilenet_v3_large", 193, 186_621_896),
        ("mobilenet_v3_large", 256, 281_663_360),
        ("efficientnet_b0", 193, 339_022_432),
        ("efficientnet_b0", 256, 503_337_472),
        ("convnext_tiny", 193, 3_273_655_296),
        ("convnext_tiny", 256, 5_819_234_304),
    ],
)
def test_other_input_sizes_match_torchvision(name, size, macs):
    # each keeps torchvision's adaptive average pool, so any input size gives its answer
    result = evaluate(load_network(name), parse_shape(f"{size}x{size}x3"))
    assert result.total_macs == macs
    assert result.output.as_list() == [1000]


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("mobilenet_v3_large", "mobilenet_v3_large"),
        ("MobileNet-V3-Large", "mobilenet_v3_large"),
        ("efficientnet_b0", "efficientnet_b0"),
        ("EfficientNet-B0", "efficientnet_b0"),
        ("convnext_tiny", "convnext_tiny"),
        ("ConvNeXt-Tiny", "convnext_tiny"),
    ],
)
def test_torchvision_spellings_name_the_preset(alias, name):
    assert name in PRESETS
    assert load_network(alias) == load_network(name)


@pytest.mark.parametrize("name", NAMES)
def test_file_opens_with_a_comment_naming_model_and_input(name):
    first = (PRESET_DIR / f"{name}.txt").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ")
    assert "torchvision" in first
    assert "224x224x3" in first


def test_convnext_block_linear_layers_cost_what_channels_last_linear_costs():
    result = evaluate(load_network("convnext_tiny"), parse_shape("224x224x3"))
    block = result.layers[2]  # the first CNBlock on 56x56x96
    assert block.merge == "add"
    main = block.branches[1]
    assert [placed.result.op for placed in main] == [
        "dwconv",
        "ln",
        "conv",
        "gelu",
        "conv",
        "scale",
    ]
    up, down = main[2].result, main[4].result
    assert up.params == 96 * 384 + 384
    assert up.macs == 56 * 56 * 96 * 384  # torch's addmm on (3136, 96) x (96, 384)
    assert down.macs == 56 * 56 * 384 * 96
    assert main[5].result.params == 96  # layer scale, one per channel


@pytest.mark.parametrize(
    ("name", "squeezes"),
    [
        # _make_divisible(expanded // 4, 8) for each SE block in order
        ("mobilenet_v3_large", [24, 32, 32, 120, 168, 168, 240, 240]),
        # max(1, block input channels // 4) for each MBConv in order
        (
            "efficientnet_b0",
            [8, 4, 6, 6, 10, 10, 20, 20, 20, 28, 28, 28, 48, 48, 48, 48],
        ),
    ],
)
def test_squeeze_and_excitation_widths(name, squeezes):
    result = evaluate(load_network(name), parse_shape("224x224x3"))
    found = []

    def walk(layers):
        for layer in layers:
            if layer.merge == "mul":
                gate = layer.branches[1]
                assert gate[0].result.op == "gap"
                found.append(gate[1].result.output.channels)
            for branch in layer.branches:
                walk([placed.result for placed in branch])

    walk(result.layers)
    assert found == squeezes
