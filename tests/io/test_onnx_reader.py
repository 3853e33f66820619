"""ONNX files read into layers and groups: figures against PyTorch's, and refusals.

The files in tests/data were exported from PyTorch by
``tools/check_onnx_against_torch.py --write-test-data tests/data``, which printed the
figures PyTorch gives for them (used below: trainable parameters, FlopCounterMode's
FLOPs / 2, the output) and checked every layer's output shape against ONNX's; their
weights' values were dropped, only shapes remain. The other models are built here
with onnx.helper.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import TensorProto, helper

from convcalc.calc.choices import Convention, PadRule, PoolKind
from convcalc.calc.evaluation import evaluate
from convcalc.calc.grammar import format_layer
from convcalc.calc.layers import Conv, Dense, Group, Pad, Pointwise, Pool, Shape, Spec
from convcalc.calc.network import NetworkResult
from convcalc.calc.presets import load_network
from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.io.onnx_reader import MISSING_ONNX, read_onnx
from tests.conftest import run, run_json

DATA = Path(__file__).resolve().parent.parent / "data"


def computed(name: str, input_shape: Shape | None = None) -> tuple[list[Spec], NetworkResult]:
    network = read_onnx(str(DATA / name))
    shape = input_shape or network.input_shape
    assert shape is not None
    return network.specs, evaluate(network.specs, shape, convention=network.convention)


def written(specs: Sequence[Spec]) -> str:
    return " ".join(format_layer(spec.layer) for spec in specs)


# -- files exported by PyTorch -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "buffers", "macs", "output"),
    [
        ("tiny_resnet.onnx", 4_082, 112, 284_832, [10]),
        ("tiny_se.onnx", 1_174, 0, 45_440, [10]),
        ("tiny_pads.onnx", 1_920, 0, 17_388, [6]),
        ("resnet18.onnx", 11_689_512, 9_600, 1_814_073_344, [1000]),
    ],
)
def test_exports_give_torch_parameters_macs_and_output(name, params, buffers, macs, output):
    _, result = computed(name)
    assert result.total_params == params
    assert result.total_buffers == buffers
    assert result.total_macs == macs
    assert result.output.as_list() == output


def test_resnet18_export_equals_the_preset():
    specs, result = computed("resnet18.onnx")
    preset = evaluate(load_network("resnet18"), Shape((224, 224), 3))
    assert (result.total_params, result.total_macs) == (preset.total_params, preset.total_macs)
    assert sum(isinstance(spec.layer, Group) for spec in specs) == 8  # the basic blocks


def test_residual_block_with_batch_norm_kept_becomes_a_group():
    specs, result = computed("tiny_resnet.onnx")
    assert written(specs) == (
        "conv:8,3,p=1,bias=no bn relu ( conv:16,3,s=2,p=1,bias=no bn relu "
        "conv:16,3,p=1,bias=no bn | conv:16,1,s=2,bias=no bn ) add relu gap flatten fc:10"
    )
    assert [str(layer.output) for layer in result.layers] == [
        "16x16x8", "16x16x8", "16x16x8", "8x8x16", "8x8x16", "1x1x16", "16", "10"
    ]  # fmt: skip
    assert specs[3].where == "tiny_resnet.onnx node '/Add'"
    assert specs[0].where == "tiny_resnet.onnx node '/stem/stem.0/Conv'"


def test_flatten_by_view_is_one_flatten():
    """x.view(x.size(0), -1) exports as Shape, Gather, Unsqueeze, Concat and Reshape."""
    specs, _ = computed("tiny_resnet.onnx")
    assert [spec.where for spec in specs if spec.text == "flatten"] == [
        "tiny_resnet.onnx node '/Reshape'"
    ]


def test_inception_branches_concatenate_and_the_input_size_is_open():
    network = read_onnx(str(DATA / "tiny_inception.onnx"))
    assert network.input_shape is None  # exported with symbolic height and width
    specs, result = computed("tiny_inception.onnx", Shape((12, 12), 3))
    assert written(specs) == (
        "conv:8,3,p=1 relu ( conv:4,1 | conv:4,1 relu conv:8,3,p=1 | "
        "maxpool:3,s=1,p=1,ceil conv:4,1 ) concat maxpool:2,ceil gap flatten fc:5"
    )
    assert (result.total_params, result.total_macs) == (713, 86_480)
    assert [str(layer.output) for layer in result.layers][2:4] == ["12x12x16", "6x6x16"]
    assert str(evaluate(specs, Shape((13, 13), 3)).layers[3].output) == "7x7x16"  # ceil


def test_squeeze_excitation_and_mobile_activations():
    specs, result = computed("tiny_se.onnx")
    assert written(specs) == (
        "conv:8,3,s=2,p=1 hardswish dwconv:3,p=1 relu6 ( gap conv:4,1 relu conv:8,1 "
        "hsigmoid | ) mul conv:16,1 silu dwconv:3,m=2,p=1,bias=no scale gap flatten fc:10"
    )
    # the layer scale (a 32x1x1 weight) is 32 parameters; BN was folded into the stem
    assert result.layers[8].params == 32


def test_asymmetric_padding_is_folded_into_the_next_window():
    specs, result = computed("tiny_pads.onnx")
    conv, pool, pad = (spec.layer for spec in specs[:3])
    assert isinstance(conv, Conv) and conv.padding == ((0, 1),)
    assert isinstance(pool, Pool) and pool.padding == ((0, 1),) and pool.stride is None
    assert pad == Pad((1,))
    assert [format_layer(spec.layer) for spec in specs[3:]] == [
        "upsample:2", "deconv:2,3,s=2,p=1,op=1", "avgpool:2", "flatten", "fc:6", "relu"
    ]  # fmt: skip
    assert [str(layer.output) for layer in result.layers][:5] == [
        "7x7x4", "4x4x4", "6x6x4", "12x12x4", "24x24x2"
    ]  # fmt: skip


def test_matmul_then_add_is_one_fully_connected_layer_with_bias():
    specs, _ = computed("tiny_pads.onnx")
    dense = specs[-2]
    assert dense.layer == Dense(6, True)
    assert dense.where == "tiny_pads.onnx node '/Add'"


# -- the command line ----------------------------------------------------------


def test_shape_reads_the_input_from_the_file():
    data = run_json("shape", "--net", str(DATA / "resnet18.onnx"))
    assert data["total_params"] == 11_689_512
    assert data["layers"][-1]["output_shape"] == [1000]
    assert data["layers"][0]["op"] == "conv"


def test_given_input_overrides_the_files():
    data = run_json("shape", "32x32x3", "--net", str(DATA / "tiny_resnet.onnx"))
    assert data["layers"][3]["output_shape"] == [16, 16, 16]


def test_open_input_size_asks_for_input():
    result = run("shape", "--net", str(DATA / "tiny_inception.onnx"))
    assert result.exit_code == 2
    assert "input size open" in result.stderr
    assert (
        run_json("shape", "12x12x3", "--net", str(DATA / "tiny_inception.onnx"))["total_params"]
        == 713
    )


def test_unsupported_operator_is_exit_2_naming_it_and_its_node(tmp_path):
    path = _model(
        tmp_path,
        [helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="encoder", hidden_size=4)],
        [1, 3, 8],
        {"W": [1, 16, 8], "R": [1, 16, 4]},
    )
    result = run("shape", "--net", path)
    assert result.exit_code == 2
    assert "node 'encoder' is an ONNX LSTM operator" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_missing_file_is_exit_1_and_junk_is_exit_2(tmp_path):
    assert run("shape", "--net", str(tmp_path / "none.onnx")).exit_code == 1
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07not a model at all")
    result = run("shape", "--net", str(junk))
    assert result.exit_code == 2
    assert "is not an ONNX model" in result.stderr


def test_without_the_onnx_package_the_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with pytest.raises(RuntimeFailure) as caught:
        read_onnx(str(DATA / "tiny_se.onnx"))
    assert str(caught.value) == MISSING_ONNX
    result = run("shape", "--net", str(DATA / "tiny_se.onnx"))
    assert result.exit_code == 1
    assert "pip install 'convcalc[onnx]'" in result.stderr


# -- models built here -----------------------------------------------------------


def _model(
    tmp_path: Path,
    nodes: list[Any],
    input_dims: Sequence[int | str],
    weights: dict[str, Sequence[int]] | None = None,
    constants: dict[str, Sequence[float]] | None = None,
    extra_inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
) -> str:
    """A model file of ``nodes`` on input ``x``, to ``outputs`` (default: the last
    node's first output); ``weights`` are initializers of those shapes (zeros),
    ``constants`` 1-D values."""
    inits = [
        helper.make_tensor(name, TensorProto.FLOAT, list(dims), [0.0] * _size(dims))
        for name, dims in (weights or {}).items()
    ]
    inits += [
        helper.make_tensor(
            name,
            TensorProto.INT64 if all(float(v).is_integer() for v in values) else TensorProto.FLOAT,
            [len(values)],
            list(values),
        )
        for name, values in (constants or {}).items()
    ]
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, list(input_dims))
        for name in ("x", *extra_inputs)
    ]
    ends = [helper.make_empty_tensor_value_info(t) for t in outputs or nodes[-1].output[:1]]
    graph = helper.make_graph(nodes, "test", inputs, ends, inits)
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def _size(dims: Sequence[int]) -> int:
    total = 1
    for d in dims:
        total *= d
    return total


def _read(tmp_path: Path, *args: Any, **kwargs: Any) -> tuple[list[Spec], Any]:
    network = read_onnx(_model(tmp_path, *args, **kwargs))
    return network.specs, network


def test_same_upper_padding_and_gemm_with_transposed_weight(tmp_path):
    specs, network = _read(
        tmp_path,
        [
            helper.make_node(
                "Conv", ["x", "w"], ["a"], name="c", auto_pad="SAME_UPPER", strides=[2, 2]
            ),
            helper.make_node("GlobalMaxPool", ["a"], ["b"]),
            helper.make_node("Flatten", ["b"], ["f"]),
            helper.make_node("Gemm", ["f", "fc", "bias"], ["y"], transB=1),
        ],
        [1, 3, 9, 9],
        {"w": [4, 3, 3, 3], "fc": [7, 4], "bias": [7]},
    )
    assert written(specs) == "conv:4,3,s=2,p=same,bias=no gmp flatten fc:7"
    assert network.convention == Convention.TF
    assert network.input_shape == Shape((9, 9), 3)
    assert specs[0].layer.padding == (PadRule.SAME,)


def test_reduce_mean_keeping_dims_is_global_pooling_and_clip_to_6_is_relu6(tmp_path):
    specs, _ = _read(
        tmp_path,
        [
            helper.make_node("Clip", ["x", "lo", "hi"], ["a"]),
            helper.make_node("ReduceMean", ["a"], ["b"], axes=[2, 3], keepdims=1),
            helper.make_node("ReduceMax", ["b"], ["y"], axes=[-1, -2], keepdims=0),
        ],
        [1, 3, 9, 9],
        constants={"lo": [0.0], "hi": [6.0]},
    )
    assert written(specs) == "relu6 gap gmp flatten"
    assert [spec.where for spec in specs][-2:] == ["model.onnx node 'ReduceMax_2'"] * 2


def test_constant_arithmetic_passes_the_input_on(tmp_path):
    """Input normalisation (Sub, Div by constants) holds no weights and makes no layer;
    Identity and Cast neither."""
    specs, _ = _read(
        tmp_path,
        [
            helper.make_node("Sub", ["x", "mean"], ["a"]),
            helper.make_node("Div", ["a", "std"], ["b"]),
            helper.make_node("Identity", ["b"], ["c"]),
            helper.make_node("Cast", ["c"], ["d"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["d", "two"], ["e"]),
            helper.make_node("Relu", ["e"], ["y"]),
        ],
        [1, 3, 4, 4],
        {"mean": [1, 3, 1, 1], "std": [1, 3, 1, 1]},
        {"two": [2.0]},
    )
    assert written(specs) == "relu"
    assert specs[0].where == "model.onnx node 'Relu_5'"


def test_grouped_and_transposed_convolutions(tmp_path):
    specs, network = _read(
        tmp_path,
        [
            helper.make_node("Conv", ["x", "g"], ["a"], group=2, pads=[1, 1, 1, 1]),
            helper.make_node("Conv", ["a", "d", "db"], ["b"], group=8, dilations=[2, 2]),
            helper.make_node("ConvTranspose", ["b", "t"], ["y"], strides=[2, 2]),
        ],
        [1, 4, 8, 8],
        {"g": [8, 2, 3, 3], "d": [8, 1, 3, 3], "db": [8], "t": [8, 3, 2, 2]},
    )
    assert written(specs) == "conv:8,3,p=1,g=2,bias=no dwconv:3,d=2 deconv:3,2,s=2,bias=no"
    result = evaluate(specs, network.input_shape)
    assert result.total_params == 8 * 2 * 9 + (8 * 9 + 8) + 8 * 3 * 4
    assert str(result.output) == "8x8x3"


def test_a_one_dimensional_network(tmp_path):
    specs, network = _read(
        tmp_path,
        [
            helper.make_node("Conv", ["x", "w"], ["a"], strides=[2]),
            helper.make_node("MaxPool", ["a"], ["y"], kernel_shape=[2], strides=[2]),
        ],
        [1, 2, 20],
        {"w": [4, 2, 5]},
    )
    assert network.input_shape == Shape((20,), 2)
    assert specs[0].layer.rank == 1
    assert str(evaluate(specs, network.input_shape).output) == "4x4"


def test_symmetric_reflect_pad_is_a_pad_layer_and_resize_by_sizes_an_upsample(tmp_path):
    specs, _ = _read(
        tmp_path,
        [
            helper.make_node("Pad", ["x", "pads"], ["a"], mode="reflect"),
            helper.make_node("Resize", ["a", "", "", "sizes"], ["y"], mode="linear"),
        ],
        [1, 3, 6, 6],
        constants={"pads": [0, 0, 2, 2, 0, 0, 2, 2], "sizes": [1, 3, 30, 30]},
    )
    assert written(specs) == "pad:2 upsample:3,mode=bilinear"


def test_the_output_is_the_first_and_dead_ends_are_dropped(tmp_path):
    """A training export's extra outputs (batch norm's running statistics) and nodes
    leading elsewhere play no part."""
    nodes = [
        helper.make_node("Relu", ["x"], ["y"]),
        helper.make_node("Sigmoid", ["x"], ["dead"]),
        helper.make_node("Tanh", ["x"], ["other"]),
    ]
    specs, _ = _read(tmp_path, nodes, [1, 3, 4, 4], outputs=["y", "other"])
    assert written(specs) == "relu"
    specs, _ = _read(tmp_path, nodes, [1, 3, 4, 4], outputs=["other", "y"])
    assert written(specs) == "tanh"


def test_symbolic_spatial_sizes_leave_the_input_open(tmp_path):
    _, network = _read(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], ["N", 3, "H", "W"])
    assert network.input_shape is None
    _, network = _read(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], ["N", 3, 5, 7])
    assert network.input_shape == Shape((5, 7), 3)


def test_pooling_keeps_onnx_strides_and_ceil_mode(tmp_path):
    specs, _ = _read(
        tmp_path,
        [
            helper.make_node(
                "AveragePool", ["x"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], ceil_mode=1
            ),
            helper.make_node("LpPool", ["a"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
        ],
        [1, 3, 8, 8],
    )
    assert written(specs) == "avgpool:3,s=1,p=1,ceil l2pool:2"
    assert specs[0].layer.kind == PoolKind.AVG


@pytest.mark.parametrize(
    ("nodes", "weights", "constants", "expected"),
    [
        (
            [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clamp")],
            {},
            {"lo": [-1.0], "hi": [1.0]},
            "node 'clamp' (Clip) clips to (-1.0, 1.0)",
        ),
        (
            [helper.make_node("Concat", ["x", "x2"], ["y"], name="cat", axis=2)],
            {},
            {},
            "node 'cat' (Concat) concatenates along axis 2",
        ),
        (
            [helper.make_node("Reshape", ["x", "to"], ["y"], name="r")],
            {},
            {"to": [1, 3, 16]},
            "node 'r' (Reshape) reshapes to rank 3",
        ),
        (
            [helper.make_node("Pad", ["x", "pads"], ["y"], name="p")],
            {},
            {"pads": [0, 0, 0, 1, 0, 0, 1, 0]},
            "node 'p' (Pad) pads asymmetrically",
        ),
        (
            [helper.make_node("Pad", ["x", "pads"], ["y"], name="p")],
            {},
            {"pads": [0, 1, 0, 0, 0, 1, 0, 0]},
            "node 'p' (Pad) pads the batch or channel axis",
        ),
        (
            [
                helper.make_node("Relu", ["x"], ["a"]),
                helper.make_node("MatMul", ["x", "a"], ["y"], name="attn"),
            ],
            {},
            {},
            "node 'attn' (MatMul) takes its weight from an activation",
        ),
        (
            [helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")],
            {"w": [4, 5]},
            {},
            "node 'proj' (MatMul) multiplies a rank-4 tensor along its last axis",
        ),
        (
            [helper.make_node("Sub", ["x", "x2"], ["y"], name="diff")],
            {},
            {},
            "node 'diff' (Sub) combines two activations",
        ),
        (
            [helper.make_node("Resize", ["x", "", "scales"], ["y"], name="half")],
            {},
            {"scales": [1.0, 1.0, 0.5, 0.5]},
            "node 'half' (Resize) scales by [1.0, 1.0, 0.5, 0.5]",
        ),
        (
            [helper.make_node("Transpose", ["x"], ["y"], name="t", perm=[0, 2, 3, 1])],
            {},
            {},
            "node 't' is an ONNX Transpose operator, which convcalc cannot size",
        ),
    ],
)
def test_nodes_convcalc_cannot_size_are_named(tmp_path, nodes, weights, constants, expected):
    if any("x2" in node.input for node in nodes):  # a second activation, from x
        nodes = [helper.make_node("Relu", ["x"], ["x2"]), *nodes]
    path = _model(tmp_path, nodes, [1, 3, 4, 4], weights, constants)
    with pytest.raises(ConvcalcError) as caught:
        read_onnx(path)
    assert not isinstance(caught.value, RuntimeFailure)
    assert str(caught.value).startswith(f"model.onnx: {expected}"), str(caught.value)


def test_networks_of_two_inputs_are_refused(tmp_path):
    path = _model(
        tmp_path, [helper.make_node("Add", ["x", "z"], ["y"])], [1, 3, 4, 4], extra_inputs=["z"]
    )
    with pytest.raises(ConvcalcError, match="has 2 inputs"):
        read_onnx(path)


def test_silu_needs_the_gate_to_read_the_same_tensor(tmp_path):
    """x * Sigmoid(x) is silu; x * Sigmoid(Relu(x)) stays a gate (a mul group)."""
    specs, _ = _read(
        tmp_path,
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Sigmoid", ["r"], ["s"]),
            helper.make_node("Mul", ["x", "s"], ["y"]),
        ],
        [1, 3, 4, 4],
    )
    assert written(specs) == "( relu sigmoid | ) mul"
    assert specs[0].layer.merge == "mul"
    assert isinstance(specs[0].layer.branches[0][0].layer, Pointwise)


def test_json_of_an_imported_network_has_the_groups():
    data = run_json("shape", "--net", str(DATA / "tiny_resnet.onnx"))
    group = data["layers"][3]
    assert group["op"] == "add"
    assert [len(branch) for branch in group["branches"]] == [5, 2]
    assert json.dumps(data)  # plain JSON all through


def test_a_flattened_nested_concat_becomes_nested_groups(tmp_path):
    """torch.onnx writes cat(a, cat(b, c)) as one Concat(a, b, c) (Inception-v3)."""
    specs, network = _read(
        tmp_path,
        [
            helper.make_node("Conv", ["x", "w1"], ["a"]),
            helper.make_node("Conv", ["x", "w1"], ["m"]),
            helper.make_node("Conv", ["m", "w2"], ["b"], pads=[0, 1, 0, 1]),
            helper.make_node("Conv", ["m", "w3"], ["c"], pads=[1, 0, 1, 0]),
            helper.make_node("Concat", ["a", "b", "c"], ["y"], name="cat", axis=1),
        ],
        [1, 3, 8, 8],
        {"w1": [4, 3, 1, 1], "w2": [2, 4, 1, 3], "w3": [2, 4, 3, 1]},
    )
    assert written(specs) == (
        "( conv:4,1,bias=no | conv:4,1,bias=no ( conv:2,1x3,p=0x1,bias=no | "
        "conv:2,3x1,p=1x0,bias=no ) concat ) concat"
    )
    assert str(evaluate(specs, network.input_shape).output) == "8x8x8"


def test_densenet_concatenation_of_every_earlier_output_is_a_running_concat(tmp_path):
    """DenseNet's layers each concatenate all earlier outputs: Concat(x0, x1, x2) after
    Concat(x0, x1) becomes ( layer | ) concat twice."""
    specs, network = _read(
        tmp_path,
        [
            helper.make_node("Concat", ["x"], ["c0"], axis=1),
            helper.make_node("Conv", ["c0", "w1"], ["x1"], pads=[1, 1, 1, 1]),
            helper.make_node("Concat", ["x", "x1"], ["c1"], axis=1),
            helper.make_node("Conv", ["c1", "w2"], ["x2"], pads=[1, 1, 1, 1]),
            helper.make_node("Concat", ["x", "x1", "x2"], ["y"], axis=1),
        ],
        [1, 4, 8, 8],
        {"w1": [2, 4, 3, 3], "w2": [2, 6, 3, 3]},
    )
    assert written(specs) == "( conv:2,3,p=1,bias=no | ) concat ( conv:2,3,p=1,bias=no | ) concat"
    assert str(evaluate(specs, network.input_shape).output) == "8x8x8"
