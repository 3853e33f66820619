"""VGG-11/13/19, ResNet-18/34/50/101/152, DenseNet-121, SqueezeNet 1.1 and MobileNetV2
against torchvision 0.28 (torch 2.13).

The figures were recorded with

    /work/torchvenv/bin/python tools/check_presets_against_torch.py vgg11 vgg13 vgg19 \\
        resnet18 resnet34 resnet50 resnet101 resnet152 densenet121 squeezenet1_1 \\
        mobilenetv2

which printed params, MACs (torch: torch.utils.flop_counter's FLOPs / 2) and memory
(bytes), each as convcalc / torch; params, MACs and the output [1000] agree exactly for
every one (the MACs below are both sides'), the memories as follows:

    preset        params        MACs             memory: convcalc / torch
    vgg11         132,863,336   7,609,090,048    65,732,512 / 35,962,784
    vgg13         133,047,848   11,308,466,176   104,267,680 / 55,230,368
    vgg19         143,667,240   19,632,062,464   125,140,896 / 65,666,976
    resnet18      11,689,512    1,814,073,344    32,921,504 / 23,689,120
    resnet34      21,797,672    3,663,761,408    50,483,104 / 36,233,120
    resnet50      25,557,032    4,089,184,256    150,239,136 / 111,804,320
    resnet101     44,549,160    7,801,405,440    225,302,432 / 166,395,808
    resnet152     60,192,808    11,513,626,624   318,027,680 / 233,832,352
    densenet121   7,978,856     2,834,161,664    195,142,560 / 91,775,904
    squeezenet1_1 1,235,496     349,151,936      28,191,616 / 11,682,112
    mobilenetv2   3,504,872     300,774,272      78,727,840 / 54,294,432

The memories differ because the presets now list the activations (relu, relu6), dropout,
flatten and the concatenations, whose outputs convcalc counts and the tool does not:
without them convcalc's memory is the tool's exactly, less torchvision's functional
global pool (F.adaptive_avg_pool2d, unseen by the tool's hooks) in DenseNet-121 and
MobileNetV2. The MACs at other input sizes are torch's too, recorded the same way in
/work/torchvenv: torchvision.models.NAME().eval() run on torch.zeros(1, 3, H, W) under
torch.utils.flop_counter.FlopCounterMode, FLOPs / 2 (equal to convcalc's, each one).
"""

from __future__ import annotations

import pytest

from convcalc.calc.evaluation import evaluate
from convcalc.calc.network import LayerResult, NetworkResult
from convcalc.calc.presets import load_network
from convcalc.calc.sizes import parse_shape


def totals(name: str, shape: str = "224x224x3") -> NetworkResult:
    return evaluate(load_network(name), parse_shape(shape))


def memory_by_op(layers: tuple[LayerResult, ...] | list[LayerResult]) -> dict[str, int]:
    """Activation memory per operation, every group opened (a merge that makes a new
    tensor is counted as ``merge-add`` / ``merge-concat``)."""
    found: dict[str, int] = {}
    for layer in layers:
        if layer.inner:
            if layer.merges:
                key = f"merge-{layer.merge}"
                found[key] = found.get(key, 0) + layer.output.volume * 4
            for op, size in memory_by_op([p.result for p in layer.inner]).items():
                found[op] = found.get(op, 0) + size
        else:
            found[layer.op] = found.get(layer.op, 0) + layer.memory
    return found


NOT_COUNTED_BY_THE_TOOL = ("relu", "relu6", "dropout", "flatten", "merge-concat")


# (name, params, MACs, convcalc memory, the torch tool's memory, functional global pool)
FIGURES = [
    ("vgg11", 132_863_336, 7_609_090_048, 65_732_512, 35_962_784, False),
    ("vgg13", 133_047_848, 11_308_466_176, 104_267_680, 55_230_368, False),
    ("vgg19", 143_667_240, 19_632_062_464, 125_140_896, 65_666_976, False),
    ("resnet18", 11_689_512, 1_814_073_344, 32_921_504, 23_689_120, False),
    ("resnet34", 21_797_672, 3_663_761_408, 50_483_104, 36_233_120, False),
    ("resnet50", 25_557_032, 4_089_184_256, 150_239_136, 111_804_320, False),
    ("resnet101", 44_549_160, 7_801_405_440, 225_302_432, 166_395_808, False),
    ("resnet152", 60_192_808, 11_513_626_624, 318_027_680, 233_832_352, False),
    ("densenet121", 7_978_856, 2_834_161_664, 195_142_560, 91_775_904, True),
    ("squeezenet1_1", 1_235_496, 349_151_936, 28_191_616, 11_682_112, False),
    ("mobilenetv2", 3_504_872, 300_774_272, 78_727_840, 54_294_432, True),
]


@pytest.mark.parametrize(("name", "params", "macs", "memory", "_", "__"), FIGURES)
def test_preset_matches_torchvision_params_macs_and_output(name, params, macs, memory, _, __):
    result = totals(name)
    assert result.total_params == params
    assert result.total_macs == macs  # torchvision's FlopCounterMode / 2, exactly
    assert result.output.as_list() == [1000]
    assert result.total_memory == memory


@pytest.mark.parametrize(("name", "_", "__", "memory", "torch_memory", "functional_gap"), FIGURES)
def test_memory_without_activations_is_the_tools(name, _, __, memory, torch_memory, functional_gap):
    result = totals(name)
    by_op = memory_by_op(result.layers)
    assert sum(by_op.values()) == memory
    counted = memory - sum(by_op.get(op, 0) for op in NOT_COUNTED_BY_THE_TOOL)
    if functional_gap:  # torchvision calls F.adaptive_avg_pool2d: no module, no hook
        counted -= by_op["gap"]
    assert counted == torch_memory


@pytest.mark.parametrize(
    ("name", "shape", "macs"),
    [
        ("vgg11", "32x32x3", 276_398_080),
        ("vgg13", "32x32x3", 351_895_552),
        ("vgg19", "32x32x3", 521_764_864),
        ("vgg19", "100x100x3", 3_881_577_472),
        ("resnet18", "97x97x3", 440_843_456),
        ("resnet34", "160x160x3", 1_869_516_800),
        ("resnet101", "160x160x3", 3_981_312_000),
        ("resnet152", "97x97x3", 2_822_548_672),
        ("densenet121", "97x97x3", 540_171_456),
        ("squeezenet1_1", "97x97x3", 71_147_520),
        ("squeezenet1_1", "300x300x3", 656_613_568),
        ("mobilenetv2", "97x97x3", 76_391_360),
    ],
)
def test_other_input_sizes_give_torchvisions_macs(name, shape, macs):
    result = totals(name, shape)
    assert result.output.as_list() == [1000]
    assert result.total_macs == macs


# -- the rewrites on groups give what the built-in blocks gave -------------------------

# (params, buffers, MACs, memory) of the presets written with basic:, bottleneck: and
# invres: blocks, as `convcalc shape 224x224x3 --net NAME --json` gave them before the
# rewrite; the blocks listed no activations, so their memory is the new one without them
BEFORE = {
    "resnet18": (11_689_512, 9_600, 1_814_073_344, 23_689_120),
    "resnet50": (25_557_032, 53_120, 4_089_184_256, 111_804_320),
    "mobilenetv2": (3_504_872, 34_112, 300_774_272, 54_299_552),
}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_rewritten_presets_keep_their_totals(name):
    params, buffers, macs, memory = BEFORE[name]
    result = totals(name)
    assert result.total_params == params
    assert result.total_buffers == buffers
    assert result.total_macs == macs
    assert result.output.as_list() == [1000]
    by_op = memory_by_op(result.layers)
    assert (
        result.total_memory - by_op.get("relu", 0) - by_op.get("relu6", 0) - by_op.get("dropout", 0)
        == memory
    )


def test_rewritten_resnets_keep_their_receptive_fields():
    for name, size in (("resnet18", 435), ("resnet50", 427)):
        last = [layer for layer in totals(name).layers if layer.receptive_field][-1]
        assert str(last.output).startswith("7x7x")
        assert last.receptive_field.size == (size, size)
        assert last.receptive_field.jump == (32, 32)


# -- structure --------------------------------------------------------------------------


def opened(layers) -> list[LayerResult]:
    """Every layer, groups opened, in order (a group's own row first)."""
    found = []
    for layer in layers:
        found.append(layer)
        found += opened([p.result for p in layer.inner])
    return found


@pytest.mark.parametrize(
    ("name", "convs", "relus"),
    [
        ("vgg11", 8, 10), ("vgg13", 10, 12), ("vgg19", 16, 18),
        ("resnet18", 20, 17), ("resnet34", 36, 33), ("resnet50", 53, 49),
        ("resnet101", 104, 100), ("resnet152", 155, 151),
        ("densenet121", 120, 121), ("squeezenet1_1", 26, 26),
    ],
)  # fmt: skip
def test_every_convolution_and_relu_is_there(name, convs, relus):
    # torchvision: its nn.Conv2d modules, and its ReLU calls (forward hooks: a ResNet
    # block calls its one ReLU module two or three times), DenseNet's last F.relu too
    layers = opened(totals(name).layers)
    assert sum(layer.op == "conv" for layer in layers) == convs
    assert sum(layer.op == "relu" for layer in layers) == relus


def test_mobilenetv2_adds_the_input_back_where_torchvision_does():
    layers = opened(totals("mobilenetv2").layers)
    sums = [str(layer.output) for layer in layers if layer.merge == "add"]
    # torchvision's InvertedResidual.use_res_connect: stride 1 and the channels kept
    assert sums == [
        "56x56x24",
        "28x28x32", "28x28x32",
        "14x14x64", "14x14x64", "14x14x64",
        "14x14x96", "14x14x96",
        "7x7x160", "7x7x160",
    ]  # fmt: skip
    # torchvision's 52 nn.Conv2d modules, 17 of them depthwise (groups = channels)
    assert sum(layer.op == "conv" for layer in layers) == 52 - 17
    assert sum(layer.op == "dwconv" for layer in layers) == 17
    assert sum(layer.op == "relu6" for layer in layers) == 35


def test_densenet121_blocks_and_transitions():
    result = totals("densenet121")
    pools = [str(layer.output) for layer in result.layers if layer.op == "avgpool"]
    assert pools == ["28x28x128", "14x14x256", "7x7x512"]
    blocks = [str(layer.output) for layer in result.layers if layer.merge == "concat"]
    assert blocks[5] == "56x56x256" and blocks[17] == "28x28x512"
    assert blocks[41] == "14x14x1024" and blocks[-1] == "7x7x1024"
    assert len(blocks) == 6 + 12 + 24 + 16


def test_squeezenet1_1_fire_modules_and_ceil_pools():
    result = totals("squeezenet1_1")
    fires = [str(layer.output) for layer in result.layers if layer.merge == "concat"]
    assert fires == [
        "55x55x128", "55x55x128", "27x27x256", "27x27x256",
        "13x13x384", "13x13x384", "13x13x512", "13x13x512",
    ]  # fmt: skip
    pools = [str(layer.output) for layer in result.layers if layer.op == "maxpool"]
    assert pools == ["55x55x64", "27x27x128", "13x13x256"]  # ceil_mode=True


@pytest.mark.parametrize(
    "name", ["VGG-11", "vgg13", "VGG19", "ResNet-34", "resnet_101", "ResNet152",
             "DenseNet-121", "SqueezeNet1_1", "mobilenet_v2"],
)  # fmt: skip
def test_presets_load_under_torchvision_spellings(name):
    assert load_network(name)
