"""Compare convcalc's ONNX reader with PyTorch on torchvision models exported to ONNX.

Not run by CI (PyTorch is not a dependency). In a scratch venv:
    pip install torch==2.13.0 torchvision==0.28.0 onnx && pip install -e .
    python tools/check_onnx_against_torch.py [MODEL ...] [--keep DIR]
Each model is exported at 1x3x224x224 (Inception-v3 1x3x299x299) with the TorchScript exporter
(``torch.onnx.export(..., dynamo=False)``) three ways: ``folded`` (eval mode, the
default: batch norm folded into the convolutions), ``bn`` (eval mode with
``do_constant_folding=False``: BatchNormalization kept) and ``train``
(``training=TrainingMode.TRAINING``: batch norm kept, dropout and stochastic depth in
the graph). For each file it prints convcalc's figures beside the reference:

* params: the file's weights (the initializers Conv, ConvTranspose, Gemm and MatMul read,
  and batch norm's scale and bias, counted per reading node); with batch norm kept
  also the model's trainable parameters, which they must equal;
* buffers: batch norm's running mean and variance in the file;
* MACs: torch.utils.flop_counter's FLOPs / 2 on the model, within 1 %;
* output: the model's output shape;
* layers: how many of convcalc's layers (groups opened) have the output shape ONNX's
  shape inference gives the tensor their node writes.

Exit status 1 when any check fails. ``--keep DIR`` keeps the exported files.

``--write-test-data DIR`` instead exports the tiny networks the tests read
(tests/data/*.onnx: a residual block with batch norm kept and a symbolic batch, an
Inception-like concat with symbolic H and W, squeeze-and-excitation with the
MobileNetV3 activations, asymmetric padding with upsampling and a transposed
convolution; and ResNet-18 with batch norm kept, for the README's example), their
weights dropped (initializers of more than 16 values point to an
external file that is not written: only their shapes count), and checks them the same
way.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.modules["torchvision._meta_registrations"] = types.ModuleType("meta")  # CPU-only torch

import onnx  # noqa: E402
import torch  # noqa: E402
import torchvision.models as tvm  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from convcalc.calc.evaluation import evaluate  # noqa: E402
from convcalc.calc.layers import Group, Mark, Shape, Spec  # noqa: E402
from convcalc.calc.network import LayerResult  # noqa: E402
from convcalc.io.onnx_reader import read_onnx  # noqa: E402

MODELS = {
    "resnet18": (tvm.resnet18, 224),
    "mobilenet_v2": (tvm.mobilenet_v2, 224),
    "googlenet": (lambda: tvm.googlenet(aux_logits=False, init_weights=False), 224),
    "squeezenet1_1": (tvm.squeezenet1_1, 224),
    "efficientnet_b0": (tvm.efficientnet_b0, 224),
    "densenet121": (tvm.densenet121, 224),
    "inception_v3": (lambda: tvm.inception_v3(aux_logits=False, init_weights=False), 299),
}
"""The issue's five, and two whose concatenations the exporter flattens."""
EXPORTS = {
    "folded": {},
    "bn": {"do_constant_folding": False},
    "train": {"training": torch.onnx.TrainingMode.TRAINING, "do_constant_folding": False},
}
WEIGHTED = {
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "Gemm": (1, 2),
    "MatMul": (1,),
    "Add": (0, 1),
    "Mul": (0, 1),
}
"""The inputs that are weights, per operator (batch norm apart: scale, bias; mean, var);
of Add and Mul only initializers of more than one value (a bias, a layer scale)."""


# -- the tiny networks of tests/data ------------------------------------------


class TinyResNet(nn.Module):
    """A stem, one basic block with a projection shortcut, global pooling, flatten
    with ``x.view(x.size(0), -1)`` (the Shape/Gather/Concat chain) and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.main = nn.Sequential(
            nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = F.relu(self.main(x) + self.shortcut(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(x.view(x.size(0), -1))


class TinyInception(nn.Module):
    """Three branches concatenated (one a ceil-mode max pool), pooling, a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.b1 = nn.Conv2d(8, 4, 1)
        self.b2 = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1))
        self.b3 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), nn.Conv2d(8, 4, 1))
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, 5)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1)
        return self.head(self.pool(x))


class TinySE(nn.Module):
    """MobileNetV3's pieces: hardswish, a depthwise convolution, ReLU6 (Clip),
    squeeze-and-excitation with a hard-sigmoid gate (Mul), SiLU (Sigmoid and Mul), a
    depthwise multiplier, a per-channel layer scale, a mean over H and W, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.Hardswish()
        )
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU6())
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(8, 4, 1),
            nn.ReLU(),
            nn.Conv2d(4, 8, 1),
            nn.Hardsigmoid(),
        )
        self.expand = nn.Sequential(nn.Conv2d(8, 16, 1), nn.SiLU())
        self.multiply = nn.Conv2d(16, 32, 3, padding=1, groups=16, bias=False)
        self.gamma = nn.Parameter(torch.ones(32, 1, 1))
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw(self.stem(x))
        x = x * self.se(x)
        x = self.multiply(self.expand(x)) * self.gamma
        return self.fc(x.mean((2, 3)))


class TinyPads(nn.Module):
    """Asymmetric padding before a convolution and a max pool (folded into them), a
    symmetric one (a layer), nearest upsampling, a transposed convolution, average
    pooling, and a fully connected layer written as MatMul and Add."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.pad = nn.ZeroPad2d(1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.deconv = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
        self.pool = nn.AvgPool2d(2)
        self.w = nn.Parameter(torch.zeros(2 * 12 * 12, 6))
        self.b = nn.Parameter(torch.zeros(6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.pad(x, (0, 1, 0, 1)))
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 2)
        x = self.pool(self.deconv(self.up(self.pad(x))))
        return F.relu(torch.flatten(x, 1) @ self.w + self.b)


TEST_DATA = {
    "tiny_resnet": (TinyResNet, 16, EXPORTS["bn"], {0: "batch"}),
    "tiny_inception": (TinyInception, 12, {}, {0: "batch", 2: "height", 3: "width"}),
    "tiny_se": (TinySE, 16, {}, {}),
    "tiny_pads": (TinyPads, 15, {}, {}),
    "resnet18": (tvm.resnet18, 224, EXPORTS["bn"], {}),
}
"""Name: (model, input size, export options, symbolic axes of the input)."""

KEPT_VALUES = 16
"""Initializers of more values than this lose their values in tests/data."""


def write_test_data(folder: Path) -> bool:
    """Export the tiny networks, drop their weights' values, check them; True if all pass."""
    folder.mkdir(parents=True, exist_ok=True)
    passed = True
    for name, (build, size, options, symbolic) in TEST_DATA.items():
        net = build().eval()
        x = torch.randn(1, 3, size, size)
        path = folder / f"{name}.onnx"
        axes = {"x": symbolic} if symbolic else None
        torch.onnx.export(
            net, (x,), str(path), dynamo=False, input_names=["x"], dynamic_axes=axes, **options
        )
        row, ok = compare(name, "tests/data", net, x, path, keeps_bn=bool(options))
        whole = read_onnx(str(path))
        model = onnx.load(str(path))
        drop_weights(model)
        onnx.save(model, str(path))
        ok &= read_onnx(str(path)) == whole  # the weights' values play no part
        print(row, f"{path.stat().st_size:,} bytes", flush=True)
        passed &= ok
    return passed


def drop_weights(model: onnx.ModelProto) -> None:
    """Point every initializer of more than KEPT_VALUES values to a file never written."""
    for tensor in model.graph.initializer:
        if _product(tensor.dims) > KEPT_VALUES:
            for field in ("raw_data", "float_data", "int64_data", "int32_data", "double_data"):
                tensor.ClearField(field)
            tensor.data_location = onnx.TensorProto.EXTERNAL
            del tensor.external_data[:]
            entry = tensor.external_data.add()
            entry.key, entry.value = "location", "weights-not-shipped.bin"


# -- checking one file ---------------------------------------------------------


def file_counts(model: onnx.ModelProto) -> tuple[int, int]:
    """The weights and the running statistics an ONNX file holds, per reading node."""
    sizes = {t.name: _product(t.dims) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in sizes:
            sizes[node.output[0]] = sizes[node.input[0]]
    weights = buffers = 0
    for node in model.graph.node:
        read = [(i, t) for i, t in enumerate(node.input) if t in sizes]
        if node.op_type == "BatchNormalization":
            weights += sum(sizes[t] for i, t in read if i in (1, 2))
            buffers += sum(sizes[t] for i, t in read if i in (3, 4))
        else:
            least = 2 if node.op_type in ("Add", "Mul") else 1
            used = WEIGHTED.get(node.op_type, ())
            weights += sum(sizes[t] for i, t in read if i in used and sizes[t] >= least)
    return weights, buffers


def inferred_shapes(model: onnx.ModelProto, x: torch.Tensor) -> dict[str, list[int]]:
    """ONNX's inferred shape of every tensor for the input ``x``, HxWxC (batch dropped,
    channels last); tensors with a size inference leaves open are left out."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for dim, size in zip(fixed.graph.input[0].type.tensor_type.shape.dim, x.shape, strict=True):
        dim.dim_value = size
    graph = onnx.shape_inference.infer_shapes(fixed, data_prop=True).graph
    shapes = {}
    for info in (*graph.value_info, *graph.output):
        dims = info.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            sizes = [d.dim_value for d in dims]
            shapes[info.name] = [*sizes[2:], sizes[1]] if len(sizes) > 1 else sizes
    return shapes


def executed_shapes(model: onnx.ModelProto, x: torch.Tensor, names: list[str]) -> dict:
    """The shapes of tensors inference leaves open, from running the model in ONNX's
    reference evaluator (when its weights are in the file: small models)."""
    from onnx.reference import ReferenceEvaluator

    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        return {}
    run = onnx.ModelProto()
    run.CopyFrom(model)
    del run.graph.output[:]
    run.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names)
    values = ReferenceEvaluator(run).run(None, {run.graph.input[0].name: x.numpy()})
    return {
        name: [*v.shape[2:], v.shape[1]] if v.ndim > 1 else list(v.shape)
        for name, v in zip(names, values, strict=True)
    }


def leaves(specs: Sequence[Spec], results: Sequence[LayerResult]) -> Iterator[tuple[str, Shape]]:
    """Every layer's node (from its spec's ``where``) and output shape, groups opened."""
    layers = [spec for spec in specs if not isinstance(spec.layer, Mark)]
    for spec, result in zip(layers, results, strict=True):
        if isinstance(spec.layer, Group):
            for branch, placed in zip(spec.layer.branches, result.branches, strict=True):
                yield from leaves(branch, [p.result for p in placed])
        else:
            yield spec.where.split(" node ", 1)[1].strip("'"), result.output


def layer_check(
    model: onnx.ModelProto, specs: Sequence[Spec], results: Sequence[LayerResult], x: torch.Tensor
) -> tuple[int, int]:
    """(layers whose shape matches ONNX's inference, layers compared)."""
    shapes = inferred_shapes(model, x)
    written = {node.name: node.output[0] for node in model.graph.node}
    found = list(leaves(specs, results))
    # a node made into two layers (ReduceMean then flatten) is compared by its last
    last = [
        pair for i, pair in enumerate(found) if i + 1 == len(found) or found[i + 1][0] != pair[0]
    ]
    missing = [written[node] for node, _ in last if written.get(node, "") not in shapes]
    if missing:
        shapes |= executed_shapes(model, x, missing)
    compared = [(shape, shapes.get(written.get(node, ""))) for node, shape in last]
    compared = [(ours, theirs) for ours, theirs in compared if theirs is not None]
    return sum(ours.as_list() == theirs for ours, theirs in compared), len(compared)


def check(name: str, export: str, folder: Path) -> tuple[str, bool]:
    """One table row for one torchvision model exported one way, and whether it passed."""
    build, size = MODELS[name]
    net = build().eval()
    x = torch.randn(1, 3, size, size)
    path = folder / f"{name}_{export}.onnx"
    torch.onnx.export(net, (x,), str(path), dynamo=False, **EXPORTS[export])
    return compare(name, export, net, x, path, keeps_bn=export != "folded")


def compare(
    name: str, export: str, net: nn.Module, x: torch.Tensor, path: Path, *, keeps_bn: bool
) -> tuple[str, bool]:
    """convcalc's reading of ``path`` against the model it was exported from."""
    net.eval()  # a training export leaves the model in train mode
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        output = list(net(x).shape[1:])
    macs = counter.get_total_flops() // 2
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)

    imported = read_onnx(str(path))
    shape = imported.input_shape or Shape(tuple(x.shape[2:]), x.shape[1])
    result = evaluate(imported.specs, shape, convention=imported.convention)
    model = onnx.load(str(path), load_external_data=False)
    weights, buffers = file_counts(model)
    same, compared = layer_check(model, imported.specs, result.layers, x)

    ok = (
        result.total_params == weights
        and (not keeps_bn or result.total_params == trainable)
        and result.total_buffers == buffers
        and abs(result.total_macs / macs - 1) <= 0.01
        and result.output.as_list() == output
        and same == compared
    )
    params = f"{result.total_params:,} / {weights:,}" + (f" / {trainable:,}" if keeps_bn else "")
    row = (
        f"| {name} | {export} | {params} | {result.total_buffers:,} / {buffers:,} | "
        f"{result.total_macs:,} / {macs:,} ({result.total_macs / macs - 1:+.2%}) | "
        f"{result.output} / {'x'.join(map(str, output))} | {same}/{compared} | "
        f"{'ok' if ok else 'FAIL'} |"
    )
    return row, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help=f"some of {', '.join(MODELS)} (default all)")
    parser.add_argument("--keep", type=Path, help="keep the exported files in this folder")
    parser.add_argument("--write-test-data", type=Path, metavar="DIR", help="see above")
    args = parser.parse_args()
    unknown = [name for name in args.models if name not in MODELS]
    if unknown:
        parser.error(f"unknown model {', '.join(unknown)}; valid: {', '.join(MODELS)}")
    print(
        "| model | export | params (convcalc / file / torch) | buffers (convcalc / file) | "
        "MACs (convcalc / torch) | output (convcalc / torch) | layers | |"
    )
    print("|---|---|---|---|---|---|---|---|")
    if args.write_test_data:
        return 0 if write_test_data(args.write_test_data) else 1
    failed = False
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.models or MODELS:
            for export in EXPORTS:
                row, ok = check(name, export, folder)
                print(row, flush=True)
                failed |= not ok
    return 1 if failed else 0


def _product(dims: Sequence[int]) -> int:
    total = 1
    for d in dims:
        total *= d
    return total


if __name__ == "__main__":
    sys.exit(main())
