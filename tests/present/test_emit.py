"""`shape --emit pytorch|keras`: the modules convcalc writes (shared/DESIGN.md, "Bring your
own network, take it back to your framework").

Neither framework is needed here: the modules are held against golden files and
compiled; tools/check_emit_against_frameworks.py builds and runs every one of them in
PyTorch and in Keras and compares parameters and output shapes with convcalc's.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from convcalc.calc.evaluation import evaluate
from convcalc.calc.sequence import parse_specs
from convcalc.calc.sizes import parse_shape
from convcalc.present.emit_keras import emit_keras
from convcalc.present.emit_pytorch import emit_pytorch
from tests.conftest import SAMPLES, run

TARGETS = ("pytorch", "keras")

CASES = [
    line.strip()
    for line in (SAMPLES / "emit_cases.txt").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
]
"""Every preset, the DESIGN.md examples and each way of writing padding (one a line)."""

REFUSED = {
    ("112x112x64 maxpool:3,s=2,ceil avgpool:3,s=2,p=1,ceil", "keras"),
    ("14x14x8 maxpool:3,s=2 avgpool:2 --convention caffe", "keras"),
    ("17x17x8 avgpool:3,s=2,p=same maxpool:2,p=same avgpool:2,p=same --convention tf", "pytorch"),
    ("32x32x3 conv:8,3 l2pool:2,p=1 fc:10", "keras"),
    ("32x32x3 conv:8,3 lrn silu hardswish hsigmoid tanh identity dropout fc:10 bn", "keras"),
}
"""The cases a framework cannot express exactly (each reason is tested below)."""

GOLDEN = {
    "lenet5": "32x32x3 --net lenet5",
    "resnet18": "224x224x3 --net resnet18",
    "googlenet": "224x224x3 --net googlenet",
    "same_transposed": "28x28x1 conv:8,3,s=2,p=same deconv:4,3,s=2,p=1,op=1 --convention tf",
}


def emit(line: str, target: str) -> str:
    result = run("shape", *shlex.split(line), "--emit", target)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", GOLDEN)
def test_emitted_modules_match_their_golden_files(golden, name, target):
    golden(f"emit_{target}_{name}", emit(GOLDEN[name], target))


def test_the_cases_hold_every_preset_and_the_golden_ones():
    from convcalc.calc.presets import PRESETS

    assert {f"--net {name}" for name in PRESETS} <= {" ".join(line.split()[1:3]) for line in CASES}
    assert set(GOLDEN.values()) <= set(CASES)
    assert {line for line, _ in REFUSED} <= set(CASES)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("line", CASES)
def test_every_case_compiles_and_states_convcalcs_figures(line, target):
    result = run("shape", *shlex.split(line), "--emit", target)
    if (line, target) in REFUSED:
        assert result.exit_code == 2
        assert "cannot express it" in result.stderr
        assert result.stdout == ""
        return
    assert result.exit_code == 0, result.output
    compile(result.stdout, f"<{target}: {line}>", "exec")
    figures = json.loads(run("shape", *shlex.split(line), "--json").stdout)
    params = figures.get("total_params", figures.get("params"))
    assert f"(convcalc: {params:,})" in result.stdout
    assert "def build() ->" in result.stdout
    assert 'if __name__ == "__main__":' in result.stdout


# -- padding: written as the result computed it ------------------------------------------


def test_tensorflow_same_with_a_stride_is_padded_unequally_before_the_pytorch_layer():
    text = emit("28x28x1 conv:8,3,s=2,p=same --convention tf", "pytorch")
    assert "nn.ZeroPad2d((0, 1, 0, 1)),  # unequal padding of conv:8,3,s=2,p=same" in text
    assert "nn.Conv2d(1, 8, kernel_size=3, stride=2),  # conv:8,3,s=2,p=same -> 14x14x8" in text


def test_keras_writes_same_only_where_it_is_tensorflows_split():
    same = emit("28x28x1 conv:8,3,s=2,p=same --convention tf", "keras")
    assert 'layers.Conv2D(8, 3, strides=2, padding="same")(x)' in same
    torch_like = emit("28x28x1 conv:8,3,s=2,p=1", "keras")  # (1, 1), not SAME's (0, 1)
    assert "layers.ZeroPadding2D(((1, 1), (1, 1)))(x)" in torch_like
    assert "padding=" not in torch_like.split("layers.Conv2D(")[1].split(")")[0]


def test_max_pool_padding_is_minus_infinity_where_the_framework_cannot_pad_it():
    keras = emit("112x112x64 maxpool:3,s=2,p=1", "keras")
    assert "MaxPadding(((1, 1), (1, 1)))(x)" in keras
    assert "ops.pad(" in keras and 'float("-inf")' in keras
    pytorch = emit("14x14x8 maxpool:2,p=same --convention tf", "pytorch")
    assert 'nn.ConstantPad2d((0, 0, 0, 0), float("-inf"))' not in pytorch
    assert "nn.MaxPool2d(kernel_size=2)" in pytorch
    odd = emit("15x15x8 maxpool:2,p=same --convention tf", "pytorch")
    assert 'nn.ConstantPad2d((0, 1, 0, 1), float("-inf"))' in odd


def test_ceil_mode_and_caffe_pooling_in_pytorch():
    text = emit("112x112x64 maxpool:3,s=2,ceil avgpool:3,s=2,p=1,ceil", "pytorch")
    assert "nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)" in text
    assert "nn.AvgPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True)" in text
    caffe = emit("14x14x8 avgpool:2 --convention caffe", "pytorch")
    assert "nn.AvgPool2d(kernel_size=2, ceil_mode=True)" in caffe


def test_tensorflows_average_leaves_equal_padding_out_of_the_count_in_pytorch():
    text = emit("17x17x8 avgpool:3,s=2,p=same --convention tf", "pytorch")
    assert "nn.AvgPool2d(kernel_size=3, stride=2, padding=1, count_include_pad=False)" in text


def test_transposed_convolutions_crop_tensorflows_same_after():
    pytorch = emit("7x7x8 deconv:8,3,s=2,p=same", "pytorch")
    assert "nn.ConvTranspose2d(8, 8, kernel_size=3, stride=2)," in pytorch
    assert "nn.ZeroPad2d((0, -1, 0, -1))" in pytorch
    keras = emit("7x7x8 deconv:8,3,s=2,p=same", "keras")
    assert 'layers.Conv2DTranspose(8, 3, strides=2, padding="same")(x)' in keras
    explicit = emit("14x14x8 deconv:4,3,s=2,p=1,op=1", "keras")
    assert "layers.Cropping2D(((1, 0), (1, 0)))(x)" in explicit
    assert "nn.ConvTranspose2d(8, 4, kernel_size=3, stride=2, padding=1, output_padding=1)" in (
        emit("14x14x8 deconv:4,3,s=2,p=1,op=1", "pytorch")
    )


# -- graphs ------------------------------------------------------------------------------


def test_branches_become_modules_and_names_a_forward():
    inception = emit(
        "28x28x192 ( conv:64,1 | conv:96,1 conv:128,3,p=1 | maxpool:3,s=1,p=1,ceil conv:32,1 ) "
        "concat",
        "pytorch",
    )
    assert (
        "class Concat(Branches):" in inception and "Concat(  # ( 3 branches ) concat" in inception
    )
    assert "return self.layers(x)" in inception
    unet = emit("572x572x1 --net unet", "pytorch")
    assert "x = torch.cat([x, c4[:, :, 4:60, 4:60]], dim=1)  # concat:c4,crop" in unet
    keras = emit("572x572x1 --net unet", "keras")
    assert "layers.Concatenate()([x, layers.Cropping2D(((4, 4), (4, 4)))(c4)])" in keras


def test_a_gate_multiplies_and_a_shortcut_adds():
    se = emit("16x16x32 ( | gap conv:8,1 relu conv:32,1 sigmoid ) mul", "keras")
    assert "x_2 = layers.GlobalAveragePooling2D(keepdims=True)(x)" in se
    assert "x = layers.Multiply()([x, x_2])" in se
    block = emit("56x56x64 basic:64", "pytorch")
    assert "Add(  # basic:64 -> 56x56x64" in block and "nn.Identity()," in block


def test_names_that_would_shadow_the_modules_own_get_an_underscore():
    text = emit("16x16x3 conv:8,3,p=1 @out @x conv:8,3,p=1 add:out,x", "pytorch")
    assert "out_ = x" in text and "x_ = x" in text
    assert "x = x + out_ + x_  # add:out,x -> 16x16x8" in text


def test_the_library_functions_without_a_command_line():
    specs = parse_specs(["conv:6,5", "maxpool:2", "fc:10"])
    shape = parse_shape("32x32x3", 2)
    result = evaluate(specs, shape)
    for emitter in (emit_pytorch, emit_keras):
        text = emitter(specs, result, shape)
        compile(text, emitter.__name__, "exec")
        assert text.startswith('"""A ') and "convcalc shape" not in text


# -- refusals and the command line ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "target", "named", "why"),
    [
        (["32x32x3", "conv:8,3", "l2pool:2"], "keras", "(l2pool:2)", "no L2 pooling"),
        (["32x32x3", "lrn"], "keras", "(lrn)", "local response normalisation"),
        (["112x112x64", "avgpool:3,s=2,p=1,ceil"], "keras", "(avgpool:3,s=2,p=1,ceil)", "ceil"),
        (["7x7x8", "avgpool:2", "--convention", "caffe"], "keras", "(avgpool:2)", "Caffe"),
        (["8x8x4", "deconv:8,3,g=2"], "keras", "(deconv:8,3,g=2)", "no groups"),
        (["16x16x3", "conv:8,3,s=2,d=2"], "keras", "(conv:8,3,s=2,d=2)", "not both"),
        (["16x16x3", "maxpool:2,d=2"], "keras", "(maxpool:2,d=2)", "no dilation"),
        (["16x16x3", "avgpool:3,d=2"], "pytorch", "(avgpool:3,d=2)", "no dilation"),
        (
            ["5x5x8", "avgpool:2,p=same", "--convention", "tf"],
            "pytorch",
            "(avgpool:2,p=same)",
            "out of the count",
        ),
    ],
)
def test_what_a_framework_cannot_express_is_refused_naming_the_layer(args, target, named, why):
    result = run("shape", *args, "--emit", target)
    assert result.exit_code == 2
    assert named in result.stderr and why in result.stderr
    framework = {"pytorch": "PyTorch", "keras": "Keras"}[target]
    assert f"{framework} cannot express it" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_a_refusal_says_where_a_network_file_holds_the_layer(tmp_path):
    net = tmp_path / "net.txt"
    net.write_text("conv:8,3\nl2pool:2\n", encoding="utf-8")
    result = run("shape", "16x16x3", "--net", str(net), "--emit", "keras")
    assert result.exit_code == 2
    assert f"{net}:2 (l2pool:2)" in result.stderr


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["-q"], "-q"),
        (["--json"], "--format json"),
        (["--format", "csv"], "--format csv"),
        (["--target", "14"], "--target"),
        (["--training"], "--training"),
        (["--explain"], "--explain"),
    ],
)
def test_emit_refuses_what_would_print_something_else(extra, named):
    result = run("shape", "28", "-k", "3", *extra, "--emit", "pytorch")
    assert result.exit_code == 2
    assert "--emit prints a Python module" in result.stderr and named in result.stderr


def test_stdout_holds_the_module_and_notes_go_to_stderr():
    result = run("shape", "28x28x1", "conv:8,3,s=2,p=same", "--emit", "pytorch")
    assert result.exit_code == 0
    assert result.stdout.startswith('"""A PyTorch network sized by convcalc.')
    assert "    convcalc shape 28x28x1 conv:8,3,s=2,p=same --emit pytorch\n" in result.stdout
    assert "note: conv:8,3,s=2,p=same: PyTorch has no SAME" in result.stderr
    compile(result.stdout, "emitted", "exec")


def test_one_layer_from_options_keeps_its_options_in_the_command_line():
    text = emit("28x28 -k 3 -s 2 --padding same", "keras")
    assert "    convcalc shape 28x28 -k 3 -s 2 -p same --emit keras\n" in text
    assert "keras.Input(shape=(28, 28, 1))" in text


def test_emit_imports_neither_numpy_nor_pillow_nor_rich():
    code = (
        "import sys\n"
        "from convcalc.cli.main import cli\n"
        "for target in ('pytorch', 'keras'):\n"
        "    try:\n"
        "        cli(['shape', '224x224x3', '--net', 'googlenet', '--emit', target])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "bad = [m for m in ('numpy', 'PIL', 'rich') if m in sys.modules]\n"
        "print('imported:', bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().endswith("imported: []"), proc.stderr
