"""Keras files read without Keras: figures against Keras's own, TensorFlow's padding,
and the layers refused by name.

The models in tests/data were written by ``tools/check_keras_against_frameworks.py
--make-test-data``, which printed the figures Keras gives for them (used below); the
other models are configurations written here, in Keras 3's and Keras 2's forms.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from convcalc.calc.choices import Convention, PadRule
from convcalc.calc.evaluation import evaluate
from convcalc.calc.grammar import format_layer
from convcalc.calc.layers import Conv, DepthwiseConv, Group, Mark, Scale, Shape, Spec
from convcalc.calc.network import LayerResult, NetworkResult
from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.io.keras_reader import read_keras
from tests.conftest import run, run_json

DATA = Path(__file__).resolve().parent.parent / "data"

FUNCTIONAL_SHAPES = {
    "stem": [16, 16, 8], "branch_b": [16, 16, 8], "branch_a": [16, 16, 8],
    "branch_b_bn": [16, 16, 8], "add": [16, 16, 8], "side": [16, 16, 4],
    "concat": [16, 16, 12], "reduce": [1, 1, 3], "expand": [1, 1, 12],
    "excite": [16, 16, 12], "separable": [8, 8, 16], "shift_bn": [8, 8, 16],
    "relu6": [8, 8, 16], "pool": [4, 4, 16], "deconv": [8, 8, 8], "upsample": [16, 16, 8],
    "pad_both": [18, 18, 8], "avgpool": [9, 9, 8], "per_pixel": [9, 9, 6], "leaky": [9, 9, 6],
    "flatten": [486], "dropout": [486], "logits": [10],
}  # fmt: skip
"""Keras's output shape of each layer of keras_functional.json that is a row here (the
asymmetric ZeroPadding2D is folded into the convolution after it; the Reshape to
1x1xC after the global pool undoes its flatten, so that the pool's row is 1x1x12)."""


def computed(path: Path) -> tuple[list[Spec], NetworkResult]:
    network = read_keras(str(path))
    assert network.input_shape is not None
    return network.specs, evaluate(network.specs, network.input_shape, convention=Convention.TF)


def named_outputs(specs: Sequence[Spec], results: Sequence[LayerResult]) -> dict[str, list[int]]:
    """Each Keras layer's output shape: the last spec read from it (groups opened)."""
    shapes: dict[str, list[int]] = {}
    placed = [spec for spec in specs if not isinstance(spec.layer, Mark)]
    for spec, result in zip(placed, results, strict=True):
        if isinstance(spec.layer, Group):
            for branch, inner in zip(spec.layer.branches, result.branches, strict=True):
                shapes.update(named_outputs(branch, [p.result for p in inner]))
        name = re.search(r"node '(.*)'$", spec.where)
        assert name is not None
        shapes[name.group(1)] = result.output.as_list()
    return shapes


# -- the shipped models, against Keras's figures ------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "macs", "output"),
    [
        ("keras_functional.json", 7_179, 210_292, [10]),
        ("keras_nested.json", 2_868, 258_112, [4]),
        ("keras_lenet.keras", 61_706, 416_520, [10]),
    ],
)
def test_models_give_keras_trainable_parameters_macs_and_output(name, params, macs, output):
    _, result = computed(DATA / name)
    assert result.total_params == params
    assert result.total_macs == macs
    assert result.output.as_list() == output


def test_every_layer_has_keras_output_shape():
    specs, result = computed(DATA / "keras_functional.json")
    extra = {"rescale": [32, 32, 3], "squeeze": [1, 1, 12]}
    assert named_outputs(specs, result.layers) == FUNCTIONAL_SHAPES | extra


def test_functional_model_becomes_groups_and_pointwise_layers():
    specs, _ = computed(DATA / "keras_functional.json")
    written = [format_layer(spec.layer) for spec in specs]
    assert written[:3] == ["identity", "conv:8,3,s=2,p=same", "relu"]
    assert written[3] == "( dwconv:3,p=same,bias=no bn | conv:8,1 ) add"
    assert written[4] == "( conv:4,3,p=same | ) concat"
    assert written[5] == "( gap conv:3,1 relu conv:12,1 sigmoid | ) mul"
    assert written[-4:] == ["flatten", "dropout", "fc:10", "softmax"]
    assert specs[1].where.endswith("node 'stem'")


def test_asymmetric_zero_padding_is_folded_into_the_valid_convolution():
    specs, result = computed(DATA / "keras_functional.json")
    depthwise = specs[6].layer
    assert depthwise == DepthwiseConv((3,), 1, (2,), ((0, 1), (0, 1)), bias=False)
    assert isinstance(specs[7].layer, Conv) and specs[7].layer.kernel == (1,)  # separable's 1x1
    assert result.layers[6].output == Shape((8, 8), 12)


def test_batch_norm_without_scale_holds_one_value_per_channel():
    specs, result = computed(DATA / "keras_functional.json")
    assert isinstance(specs[8].layer, Scale)
    assert (result.layers[8].params, result.layers[8].buffers) == (16, 0)


def test_dense_on_a_feature_map_is_a_1x1_convolution():
    specs, result = computed(DATA / "keras_functional.json")
    assert format_layer(specs[15].layer) == "conv:6,1"
    assert result.layers[15].params == 8 * 6 + 6


def test_nested_sequential_and_functional_models_are_opened_in_place():
    specs, _ = computed(DATA / "keras_nested.json")
    written = [format_layer(spec.layer) for spec in specs]
    assert written == [
        "conv:16,3,p=same,bias=no",
        "bn",
        "silu",
        "maxpool:2",
        "( conv:16,3,p=same,bias=no bn relu | ) add",
        "gmp",
        "flatten",
        "fc:4",
    ]
    assert specs[0].where.endswith("node 'stem/conv'")


# -- TensorFlow's padding -----------------------------------------------------------


def test_files_use_tensorflow_rules_for_same_padding_with_stride():
    network = read_keras(str(DATA / "keras_functional.json"))
    assert network.convention == Convention.TF
    assert network.input_shape == Shape((32, 32), 3)
    stem = network.specs[1].layer
    assert isinstance(stem, Conv) and stem.padding == (PadRule.SAME,)
    result = evaluate(network.specs, network.input_shape, convention=network.convention)
    rows, _ = result.layers[1].axes
    assert (rows.size, rows.pad_lo, rows.pad_hi) == (16, 0, 1)  # the odd one after


# -- the command line ---------------------------------------------------------------


def test_shape_reads_a_keras_zip_with_its_input_shape():
    data = run_json("shape", "--net", str(DATA / "keras_lenet.keras"))
    assert data["input_shape"] == [28, 28, 1]
    assert data["output_shape"] == [10]
    assert data["total_params"] == 61_706


def test_given_input_overrides_the_files():
    data = run_json("shape", "33x33x3", "--net", str(DATA / "keras_functional.json"))
    assert data["input_shape"] == [33, 33, 3]
    assert data["layers"][1]["output_shape"] == [17, 17, 8]


def test_unsupported_layer_class_is_exit_2_naming_it(tmp_path):
    config = json.loads((DATA / "keras_functional.json").read_text())
    leaky = next(layer for layer in config["config"]["layers"] if layer["name"] == "leaky")
    leaky["class_name"] = "PReLU"
    path = tmp_path / "prelu.json"
    path.write_text(json.dumps(config))
    result = run("shape", "--net", str(path))
    assert result.exit_code == 2
    assert "layer 'leaky' is a PReLU, which convcalc cannot size" in result.stderr
    assert "Traceback" not in result.stderr


def test_open_input_size_asks_for_input(tmp_path):
    path = write(tmp_path, model(inputs(shape=(None, None, 3)), conv("c", "x", 4, 3)))
    assert read_keras(str(path)).input_shape is None
    result = run("shape", "--net", str(path))
    assert result.exit_code == 2
    assert "give it as INPUT" in result.stderr
    assert run_json("shape", "8x8x3", "--net", str(path))["output_shape"] == [6, 6, 4]


# -- configurations written here ----------------------------------------------------


def tensor(name: str) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__", "config": {"keras_history": [name, 0, 0]}}


def layer(kind: str, name: str, *reads: str, **config: Any) -> dict[str, Any]:
    """A Keras 3 layer entry, called once on ``reads``."""
    args: list[Any] = [tensor(reads[0])] if len(reads) == 1 else [[tensor(r) for r in reads]]
    return {
        "class_name": kind,
        "name": name,
        "config": {"name": name, **config},
        "inbound_nodes": [{"args": args, "kwargs": {}}] if reads else [],
    }


def inputs(name: str = "x", shape: tuple[int | None, ...] = (8, 8, 3)) -> dict[str, Any]:
    return layer("InputLayer", name, batch_shape=[None, *shape])


def conv(name: str, read: str, filters: int, kernel: int, **config: Any) -> dict[str, Any]:
    return layer("Conv2D", name, read, filters=filters, kernel_size=[kernel, kernel], **config)


def model(*layers: dict[str, Any], output: str | None = None) -> dict[str, Any]:
    entry = [layer["name"] for layer in layers if layer["class_name"] == "InputLayer"]
    return {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": list(layers),
            "input_layers": [[name, 0, 0] for name in entry],
            "output_layers": [output or layers[-1]["name"], 0, 0],
        },
    }


def write(folder: Path, config: dict[str, Any], name: str = "model.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(config))
    return path


def read_written(folder: Path, config: dict[str, Any]) -> NetworkResult:
    network = read_keras(str(write(folder, config)))
    assert network.input_shape is not None
    return evaluate(network.specs, network.input_shape, convention=network.convention)


@pytest.mark.parametrize(
    ("scale", "center", "params", "buffers"),
    [(True, True, 6, 6), (False, True, 3, 0), (True, False, 3, 0), (False, False, 0, 0)],
)
def test_batch_norm_counts_the_values_scale_and_center_keep(
    tmp_path, scale, center, params, buffers
):
    config = model(
        inputs(), layer("BatchNormalization", "bn", "x", axis=-1, scale=scale, center=center)
    )
    result = read_written(tmp_path, config)
    assert (result.total_params, result.total_buffers) == (params, buffers)  # C = 3


def test_zero_padding_then_cropping_alike_is_a_shift(tmp_path):
    config = model(
        inputs(),
        layer("ZeroPadding2D", "pad", "x", padding=[[0, 1], [0, 1]]),
        layer("Cropping2D", "crop", "pad", cropping=[[1, 0], [1, 0]]),
        conv("c", "crop", 4, 3),
    )
    result = read_written(tmp_path, config)
    assert [str(layer.output) for layer in result.layers] == ["6x6x4"]


def test_keras_2_json_is_read(tmp_path):
    def legacy(kind: str, name: str, reads: list[str], **config: Any) -> dict[str, Any]:
        nodes = [[[read, 0, 0, {}] for read in reads]] if reads else []
        return {"class_name": kind, "name": name, "config": config, "inbound_nodes": nodes}

    functional = {
        "class_name": "Model",
        "config": {
            "name": "model",
            "layers": [
                legacy("InputLayer", "x", [], batch_input_shape=[None, 8, 8, 3]),
                legacy("Conv2D", "a", ["x"], filters=4, kernel_size=[1, 1], padding="valid"),
                legacy("Conv2D", "b", ["x"], filters=4, kernel_size=[3, 3], padding="same"),
                legacy("Concatenate", "cat", ["a", "b"], axis=-1),
                legacy("GlobalAveragePooling2D", "gap", ["cat"]),
                legacy("Dense", "fc", ["gap"], units=2, activation="softmax"),
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["fc", 0, 0]],
        },
        "keras_version": "2.15.0",
    }
    result = read_written(tmp_path, functional)
    assert result.total_params == (3 * 4 + 4) + (27 * 4 + 4) + (8 * 2 + 2)
    assert result.output == Shape((), 2)
    sequential = {
        "class_name": "Sequential",
        "config": {
            "name": "seq",
            "layers": [
                {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": [3, 3],
                                                    "batch_input_shape": [None, 5, 5, 1]}},
                {"class_name": "Flatten", "config": {}},
            ],
        },
    }  # fmt: skip
    assert str(read_written(tmp_path, sequential).output) == "18"


def test_reading_imports_no_framework_and_no_numpy():
    code = (
        "import sys; from convcalc.io.keras_reader import read_keras; "
        f"read_keras({str(DATA / 'keras_functional.json')!r}); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('keras', 'tensorflow', 'torch', 'h5py', 'numpy')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_model_read_twice_gives_the_same_specs():
    path = str(DATA / "keras_nested.json")
    assert read_keras(path) == read_keras(path)


# -- refusals -------------------------------------------------------------------------


def refused(folder: Path, config: dict[str, Any]) -> str:
    with pytest.raises(ConvcalcError) as caught:
        read_keras(str(write(folder, config)))
    return str(caught.value)


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        (
            [layer("Cropping2D", "crop", "x", cropping=[[1, 1], [1, 1]])],
            "layer 'crop' (Cropping2D) crops ((1, 1), (1, 1))",
        ),
        (
            [layer("Reshape", "r", "x", target_shape=[4, 16, 3])],
            "layer 'r' (Reshape) reshapes to (4, 16, 3)",
        ),
        (
            [
                layer("ZeroPadding2D", "pad", "x", padding=[[0, 1], [0, 1]]),
                layer("MaxPooling2D", "pool", "pad", pool_size=[2, 2]),
            ],
            "ZeroPadding2D 'pad' pads asymmetrically ((0, 1), (0, 1)), and layer 'pool'",
        ),
        ([conv("c", "x", 4, 3, data_format="channels_first")], "has data_format=channels_first"),
        ([conv("c", "x", 4, 3, activation="elu")], "uses the activation 'elu'"),
        ([layer("UpSampling2D", "up", "x", size=2, interpolation="bicubic")], "'bicubic'"),
        ([layer("Concatenate", "cat", "x", "x", axis=1)], "works along axis 1"),
        ([layer("ELU", "elu", "x")], "layer 'elu' is a ELU, which convcalc cannot size"),
        (
            [layer("Conv2D", "c", "x", kernel_size=[3, 3])],
            "layer 'c' (Conv2D) has a configuration convcalc cannot read (KeyError: 'filters')",
        ),
        ([conv("c", "nowhere", 4, 3)], "the model's configuration is not as Keras writes it"),
    ],
)
def test_layers_convcalc_cannot_size_are_named(tmp_path, layers, expected):
    assert expected in refused(tmp_path, model(inputs(), *layers))


def test_a_layer_called_twice_with_weights_is_refused(tmp_path):
    shared = conv("c", "x", 3, 1)
    shared["inbound_nodes"].append({"args": [tensor("c")], "kwargs": {}})
    config = model(inputs(), shared)
    config["config"]["output_layers"] = ["c", 1, 0]
    assert "is called 2 times with the same weights" in refused(tmp_path, config)


def test_a_model_used_twice_is_refused_and_a_shared_relu_is_not(tmp_path):
    block = model(inputs("i"), conv("c", "i", 3, 1))
    twice = {**layer("Functional", "block", "x"), "config": block["config"]}
    twice["inbound_nodes"].append({"args": [tensor("block")], "kwargs": {}})
    config = model(inputs(), twice, output="block")
    config["config"]["output_layers"] = ["block", 1, 0]
    assert "layer 'block' (Functional) is called 2 times" in refused(tmp_path, config)
    relu = layer("ReLU", "relu", "x")
    relu["inbound_nodes"].append({"args": [tensor("relu")], "kwargs": {}})
    config = model(inputs(), relu)
    config["config"]["output_layers"] = ["relu", 1, 0]
    assert [str(r.output) for r in read_written(tmp_path, config).layers] == ["8x8x3"] * 2


def test_models_convcalc_cannot_read_are_refused(tmp_path):
    two = model(inputs("a"), inputs("b"), layer("Add", "add", "a", "b"))
    assert "input 'b' is a second input" in refused(tmp_path, two)
    subclassed = {"class_name": "MyModel", "config": {"name": "mine"}}
    assert "MyModel whose graph lives in Python code" in refused(tmp_path, subclassed)


def test_files_that_are_no_keras_model_are_refused(tmp_path):
    (tmp_path / "text.keras").write_text("not a zip")
    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "other.json").write_text('{"a": 1}')
    for name, message in [
        ("text.keras", "is not a Keras 3 .keras zip holding config.json"),
        ("empty.keras", "is not a Keras 3 .keras zip holding config.json"),
        ("bad.json", "is not JSON"),
        ("other.json", "holds no Keras model"),
    ]:
        with pytest.raises(ConvcalcError, match=re.escape(message)):
            read_keras(str(tmp_path / name))
    with pytest.raises(RuntimeFailure):
        read_keras(str(tmp_path / "missing.json"))
