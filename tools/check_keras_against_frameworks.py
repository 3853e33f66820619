"""Build keras.applications models, save them, and compare convcalc's reading of the
files with Keras: trainable parameters, MACs, the output and every layer's shape.

Not run by CI (Keras is not a dependency, and convcalc never imports it). Keras 3 runs
on the PyTorch backend here:
    pip install torch keras && pip install -e .
    KERAS_BACKEND=torch python tools/check_keras_against_frameworks.py [MODEL ...] [--keep DIR]
Each model (weights=None, include_top=True, its default input size) is saved twice,
``model.save(NAME.keras)`` and ``model.to_json()`` into NAME.json, and each file is
read by `convcalc.io.keras_reader.read_keras` and once by the CLI
(``python -m convcalc shape --net FILE --json``). Compared:

* trainable parameters: the sizes of ``model.trainable_weights``, summed; exact;
* MACs: counted from the Keras model itself, per layer from its weights and shapes:
  a convolution's output positions × its kernel's size (KH·KW·C_in/groups·C_out;
  depthwise KH·KW·C·M), SeparableConv both kernels, a transposed convolution its
  input positions × its kernel's size, Dense its input positions × its kernel's size
  (biases are not MACs); within 1 %;
* the output shape, and each Keras layer's output shape against the last convcalc
  layer read from it (layers that become no row of their own, such as an asymmetric
  ZeroPadding2D folded into the next convolution, are not compared); exact.

``--make-test-data DIR`` instead writes the small models of tests/io/test_keras_reader.py
(configs only: a .keras zip holding config.json alone, and to_json() text, with the
initializers, regularizers, constraints and dtypes left out) and prints Keras's
figures for them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras

from convcalc.calc.evaluation import evaluate
from convcalc.calc.layers import Group, Mark, Spec
from convcalc.calc.network import LayerResult
from convcalc.io.keras_reader import read_keras

ROOT = Path(__file__).resolve().parent.parent

MODELS = {
    "resnet50": keras.applications.ResNet50,
    "mobilenetv2": keras.applications.MobileNetV2,
    "densenet121": keras.applications.DenseNet121,
    "inceptionv3": keras.applications.InceptionV3,
    "vgg16": keras.applications.VGG16,
}
"""The models checked by default: those the Keras reader promises."""

MORE = {
    "efficientnetb0": keras.applications.EfficientNetB0,
    "mobilenetv3large": keras.applications.MobileNetV3Large,
    "xception": keras.applications.Xception,
    "convnexttiny": keras.applications.ConvNeXtTiny,
    "resnet50v2": keras.applications.ResNet50V2,
}
"""Further models, checked when named (NASNet has no torch backend; InceptionResNetV2's
blocks join a subset of a fork's branches first, which convcalc's graphs do not read)."""

INPUT_SIZES = {"mobilenetv3large": (224, 224, 3)}
"""Models whose default input leaves the size open."""
MAC_TOLERANCE = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", metavar="MODEL", help=", ".join([*MODELS, *MORE]))
    parser.add_argument("--keep", help="save the files in this folder (default: a temporary one)")
    parser.add_argument("--make-test-data", metavar="DIR", help="write the tests' small models")
    args = parser.parse_args()
    if args.make_test_data:
        make_test_data(Path(args.make_test_data))
        return
    builders = MODELS | MORE
    unknown = [name for name in args.models if name not in builders]
    if unknown:
        parser.error(f"unknown model {unknown[0]}; valid: {', '.join(builders)}")
    rows, failures = [], 0
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.models or MODELS:
            model = builders[name](weights=None, input_shape=INPUT_SIZES.get(name))
            theirs = keras_figures(model)
            for suffix in (".keras", ".json"):
                path = folder / f"{name}{suffix}"
                if suffix == ".keras":
                    model.save(path)
                else:
                    path.write_text(model.to_json())
                row = compare(name + suffix, path, model, theirs)
                failures += not row["ok"]
                rows.append(row)
    print_table(rows)
    print(f"{len(rows)} files, {failures} failing")
    sys.exit(1 if failures else 0)


def keras_figures(model: Any) -> dict[str, Any]:
    """Keras's own trainable parameters, MACs (counted as the module docstring says)
    and output shape."""
    params = sum(math.prod(w.shape) for w in model.trainable_weights)
    macs = sum(layer_macs(layer) for layer in all_layers(model))
    return {"params": params, "macs": macs, "output": list(model.outputs[0].shape[1:])}


def all_layers(model: Any) -> list[Any]:
    """Every layer, nested models opened."""
    found = []
    for layer in model.layers:
        found += all_layers(layer) if hasattr(layer, "layers") else [layer]
    return found


def layer_macs(layer: Any) -> int:
    kind = type(layer).__name__
    if not hasattr(layer, "output") or not any(k in kind for k in ("Conv", "Dense")):
        return 0
    out_positions = math.prod(layer.output.shape[1:-1])
    in_positions = math.prod(layer.input.shape[1:-1])
    if kind.startswith("Separable"):
        kernels = [layer.depthwise_kernel, layer.pointwise_kernel]
    else:
        kernels = [layer.kernel]  # DepthwiseConv2D's too: KH·KW·C·M
    size = sum(math.prod(k.shape) for k in kernels)
    if "Transpose" in kind or kind == "Dense":
        return in_positions * size
    return out_positions * size


def compare(label: str, path: Path, model: Any, theirs: dict[str, Any]) -> dict[str, Any]:
    network = read_keras(str(path))
    assert network.input_shape is not None
    result = evaluate(network.specs, network.input_shape, convention=network.convention)
    cli = cli_json(path)
    layers = named_outputs(network.specs, result.layers)
    keras_shapes = {layer.name: list(layer.output.shape[1:]) for layer in model.layers}
    wrong = [
        f"{name}: keras {shape}, convcalc {layers[name]}"
        for name, shape in keras_shapes.items()
        if name in layers and layers[name] != shape and not unflattened(layers[name], shape)
    ]
    compared = sum(name in layers for name in keras_shapes)
    macs_off = abs(result.total_macs - theirs["macs"]) / theirs["macs"]
    ok = (
        result.total_params == theirs["params"] == cli["total_params"]
        and macs_off <= MAC_TOLERANCE
        and result.output.as_list() == theirs["output"] == cli["output_shape"]
        and cli["total_macs"] == result.total_macs
        and not wrong
    )
    for line in wrong[:5]:
        print(f"  {label}: {line}")
    return {
        "file": label,
        "keras params": theirs["params"],
        "convcalc params": result.total_params,
        "keras MACs": theirs["macs"],
        "convcalc MACs": result.total_macs,
        "MACs off": f"{100 * macs_off:.2f} %",
        "output": f"{theirs['output']} / {result.output.as_list()}",
        "layer shapes": f"{compared - len(wrong)}/{compared}",
        "CLI says": cli["convention"],
        "ok": ok,
    }


def unflattened(ours: list[int], theirs: list[int]) -> bool:
    """A global pool whose flatten a Reshape to 1x1xC undid (squeeze-and-excitation):
    convcalc's row is the 1x1xC the Reshape gives."""
    return len(theirs) == 1 and ours[-1:] == theirs and set(ours[:-1]) == {1}


def cli_json(path: Path) -> dict[str, Any]:
    """``convcalc shape --net FILE --json``, run as a user would."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "convcalc", "shape", "--net", str(path), "--json"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode:
        raise SystemExit(f"convcalc failed on {path}: {done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def named_outputs(specs: Sequence[Spec], results: Sequence[LayerResult]) -> dict[str, list[int]]:
    """Each Keras layer's output shape in convcalc: that of the last spec read from it
    (a group's spec is its merge), groups opened."""
    shapes: dict[str, list[int]] = {}
    placed = [spec for spec in specs if not isinstance(spec.layer, Mark)]
    for spec, result in zip(placed, results, strict=True):
        if isinstance(spec.layer, Group):
            for branch, inner in zip(spec.layer.branches, result.branches, strict=True):
                shapes.update(named_outputs(branch, [p.result for p in inner]))
        found = re.search(r"node '(.*)'$", spec.where)
        if found:
            shapes[found.group(1)] = result.output.as_list()
    return shapes


def make_test_data(folder: Path) -> None:
    """Write the tests' models and print, for each, Keras's figures and layer shapes."""
    for name, model in (
        ("keras_functional.json", tiny_functional()),
        ("keras_nested.json", tiny_nested()),
        ("keras_lenet.keras", lenet()),
    ):
        config = json.dumps(stripped(json.loads(model.to_json())), separators=(",", ":"))
        path = folder / name
        if name.endswith(".keras"):
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("config.json", config)
        else:
            path.write_text(config + "\n")
        figures = keras_figures(model)
        print(f"{name}: {path.stat().st_size:,} bytes, {figures}")
        for layer in model.layers:
            print(f"    {layer.name}: {list(layer.output.shape[1:])}")


def stripped(config: Any) -> Any:
    """A configuration without what the reader never reads (initializers, dtypes …)."""
    dropped = ("_initializer", "_regularizer", "_constraint")
    if isinstance(config, dict):
        return {
            key: stripped(value)
            for key, value in config.items()
            if not key.endswith(dropped) and key not in ("dtype", "module", "registered_name")
        }
    if isinstance(config, list):
        return [stripped(value) for value in config]
    return config


def tiny_functional() -> Any:
    """Every merge, a squeeze-and-excitation gate, asymmetric and symmetric padding,
    separable, transposed and per-pixel (Dense on HxWxC) layers."""
    layers = keras.layers
    image = keras.Input((32, 32, 3), name="image")
    x = layers.Rescaling(1 / 255, name="rescale")(image)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="stem")(x)
    a = layers.Conv2D(8, 1, name="branch_a")(x)
    b = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="branch_b")(x)
    b = layers.BatchNormalization(name="branch_b_bn")(b)
    x = layers.Add(name="add")([a, b])
    side = layers.Conv2D(4, 3, padding="same", name="side")(x)
    x = layers.Concatenate(name="concat")([x, side])
    gate = layers.GlobalAveragePooling2D(name="squeeze")(x)
    gate = layers.Reshape((1, 1, 12), name="squeeze_reshape")(gate)
    gate = layers.Conv2D(3, 1, activation="relu", name="reduce")(gate)
    gate = layers.Conv2D(12, 1, activation="sigmoid", name="expand")(gate)
    x = layers.Multiply(name="excite")([x, gate])
    x = layers.ZeroPadding2D(((0, 1), (0, 1)), name="pad")(x)
    x = layers.SeparableConv2D(16, 3, strides=2, name="separable")(x)
    x = layers.BatchNormalization(scale=False, name="shift_bn")(x)
    x = layers.ReLU(6.0, name="relu6")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool")(x)
    x = layers.Conv2DTranspose(8, 3, strides=2, padding="same", name="deconv")(x)
    x = layers.UpSampling2D(2, name="upsample")(x)
    x = layers.ZeroPadding2D(1, name="pad_both")(x)
    x = layers.AveragePooling2D(2, name="avgpool")(x)
    x = layers.Dense(6, name="per_pixel")(x)
    x = layers.LeakyReLU(name="leaky")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    out = layers.Dense(10, activation="softmax", name="logits")(x)
    return keras.Model(image, out, name="tiny_functional")


def tiny_nested() -> Any:
    """A Sequential (without an InputLayer) and a Functional block used as layers."""
    layers = keras.layers
    stem = keras.Sequential(
        [
            layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv"),
            layers.BatchNormalization(name="bn"),
            layers.Activation("swish", name="swish"),
        ],
        name="stem",
    )
    block_in = keras.Input((8, 8, 16), name="block_in")
    y = layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv")(block_in)
    y = layers.BatchNormalization(name="bn")(y)
    y = layers.Activation("relu", name="relu")(y)
    y = layers.Add(name="add")([block_in, y])
    block = keras.Model(block_in, y, name="res_block")
    image = keras.Input((16, 16, 3), name="image")
    x = stem(image)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = block(x)
    x = layers.GlobalMaxPooling2D(keepdims=True, name="gmp")(x)
    x = layers.Reshape((16,), name="to_vector")(x)
    out = layers.Dense(4, name="logits")(x)
    return keras.Model(image, out, name="tiny_nested")


def lenet() -> Any:
    """LeNet-5 as a Sequential model: 61,706 parameters."""
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="digits"),
            layers.Conv2D(6, 5, padding="same", activation="tanh", name="c1"),
            layers.AveragePooling2D(2, name="s2"),
            layers.Conv2D(16, 5, activation="tanh", name="c3"),
            layers.AveragePooling2D(2, name="s4"),
            layers.Flatten(name="flatten"),
            layers.Dense(120, activation="tanh", name="f5"),
            layers.Dense(84, activation="tanh", name="f6"),
            layers.Dense(10, activation="softmax", name="output"),
        ],
        name="lenet5",
    )


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = [key for key in rows[0] if key != "ok"] + ["ok"]
    cells = [
        [f"{row[c]:,}" if isinstance(row[c], int) and not isinstance(row[c], bool) else
         str(row[c]) for c in columns]
        for row in rows
    ]  # fmt: skip
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
