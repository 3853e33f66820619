"""Build the modules `convcalc shape ... --emit pytorch|keras` writes, in PyTorch and Keras.

Not run by CI (neither framework is a dependency). In a scratch venv:
    pip install torch keras && pip install -e .
    KERAS_BACKEND=torch python tools/check_emit_against_frameworks.py [--markdown]
For every case of samples/emit_cases.txt (every preset at its published input size, the
examples of shared/DESIGN.md, and cases for each way of writing padding) and both
targets it runs the CLI, executes the module it prints, builds the network, counts the
trainable parameters, runs a zero input, and prints both beside convcalc's own figures
(`--json`); a case a framework cannot express shows convcalc's refusal instead.

For the plain stacks (no branches, no names) it also copies the PyTorch module's weights
into the Keras model (random weights and batch-norm statistics) and prints the largest
difference of their outputs on a random input: where the two frameworks pad, crop and
round the same way, the outputs agree to float32 rounding. Exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import torch
from click.testing import CliRunner

from convcalc.cli.main import cli

CASES = Path(__file__).resolve().parents[1] / "samples" / "emit_cases.txt"
TOLERANCE = 1e-4
"""Largest output difference, relative to the output's largest value, taken as equal."""


def cases() -> list[str]:
    """The cases of samples/emit_cases.txt: `convcalc shape` arguments, one a line."""
    lines = CASES.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def convcalc(args: list[str]) -> tuple[int, list[int]]:
    """convcalc's own trainable parameters and output shape (HxWxC) of a case."""
    result = CliRunner().invoke(cli, ["shape", *args, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    if "layers" in doc:
        return doc["total_params"], doc["layers"][-1]["output_shape"]
    return doc["params"], doc["output_shape"]


def emitted(args: list[str], target: str) -> tuple[str | None, str]:
    """The module convcalc prints, or None and its refusal."""
    result = CliRunner().invoke(cli, ["shape", *args, "--emit", target])
    if result.exit_code:
        return None, result.stderr.strip().removeprefix("Error: ")
    return result.stdout, ""


def build(text: str, name: str) -> tuple[Any, list[Any]]:
    """The module's ``build()`` run, and the Keras layers it made, in the order made."""
    namespace: dict[str, Any] = {"__name__": "emitted"}
    exec(compile(text, name, "exec"), namespace)
    created: list[Any] = []
    init = keras.layers.Layer.__init__

    def recording(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        created.append(self)

    keras.layers.Layer.__init__ = recording  # type: ignore[method-assign]
    try:
        return namespace["build"](), created
    finally:
        keras.layers.Layer.__init__ = init  # type: ignore[method-assign]


def run_torch(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, list[int]]:
    model.eval()
    with torch.no_grad():
        out = model(x)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    hwc = [*out.shape[2:], out.shape[1]] if out.dim() > 2 else [out.shape[1]]
    return params, [int(n) for n in hwc]


def run_keras(model: Any, x: torch.Tensor) -> tuple[int, list[int]]:
    out = model(x, training=False)
    params = sum(math.prod(w.shape) for w in model.trainable_weights)
    return params, [int(n) for n in out.shape[1:]]


def same_shape(ours: list[int], theirs: list[int]) -> bool:
    """A shape without channels (``28x28``) is the framework's one channel."""
    return theirs == ours or (theirs[:-1] == ours and theirs[-1] == 1)


def check(
    args: list[str], target: str, expected: tuple[int, list[int]]
) -> tuple[str, Any, list[Any]]:
    """A table cell for one target (its figures, ✓ where they are convcalc's), the model
    and the Keras layers it made; a refusal's cell is ``refused (n)``."""
    text, refusal = emitted(args, target)
    if text is None:
        return refusal, None, []
    model, created = build(text, f"<{target}: {shlex.join(args)}>")
    x = _input(text, target)
    params, shape = run_torch(model, x) if target == "pytorch" else run_keras(model, x)
    ok = params == expected[0] and same_shape(expected[1], shape)
    return f"{params:,} · {_shape(shape)} {'✓' if ok else 'DIFFERS'}", model, created


def compare_outputs(torch_model: torch.nn.Module, keras_model: Any, created: list[Any]) -> str:
    """The PyTorch weights copied into the Keras model; the outputs' largest difference,
    relative to the largest output. ``created`` lists the Keras layers in the order the
    module made them: the order the PyTorch module holds its own."""
    torch.manual_seed(0)
    modules = [m for m in torch_model.modules() if not list(m.children()) and _holds(m)]
    weighted = [layer for layer in created if layer.weights and not isinstance(layer, keras.Model)]
    if len(modules) != len(weighted):
        return f"{len(modules)} vs {len(weighted)} layers with weights: DIFFERS"
    for module, layer in zip(modules, weighted, strict=True):
        _copy(module, layer, created[created.index(layer) - 1])
    shape = keras_model.inputs[0].shape[1:]
    x = torch.rand(1, *shape) * 2 - 1
    with torch.no_grad():
        ours = torch_model.eval()(x.movedim(-1, 1))
        theirs = torch.as_tensor(keras_model(x, training=False))
    ours = ours.movedim(1, -1) if ours.dim() > 2 else ours
    largest = float(ours.abs().max())
    if largest == 0:
        return "all zero: DIFFERS"
    diff = float((ours - theirs).abs().max()) / largest
    return f"{diff:.1e}" + ("" if diff <= TOLERANCE else ": DIFFERS")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("match", nargs="*", help="only the cases containing these words")
    options = parser.parse_args()
    torch.manual_seed(0)  # the modules' own initial weights, the same on every run
    refusals: list[str] = []
    emitted_count = 0
    failed = False
    print(_row(COLUMNS, options.markdown, header=True), flush=True)
    for line in cases():
        if options.match and not all(word in line for word in options.match):
            continue
        args = shlex.split(line)
        expected = convcalc(args)
        cells = [line, f"{expected[0]:,} · {_shape(expected[1])}"]
        models = []
        for target in ("pytorch", "keras"):
            cell, model, created = check(args, target, expected)
            if model is None:
                refusals.append(cell)
                cell = f"refused ({len(refusals)})"
            emitted_count += model is not None
            cells.append(cell)
            models.append((model, created))
        (torch_model, _), (keras_model, created) = models
        both = torch_model is not None and keras_model is not None
        cells.append(compare_outputs(torch_model, keras_model, created) if both else "")
        failed |= any("DIFFERS" in cell for cell in cells)
        print(_row(cells, options.markdown), flush=True)
    print()
    for number, refusal in enumerate(refusals, start=1):
        print(f"({number}) {refusal}")
    verdict = "some DIFFER" if failed else "all match convcalc's parameters and output shapes"
    print(f"\n{emitted_count} modules built, {len(refusals)} refused: {verdict}")
    return 1 if failed else 0


# -- helpers ---------------------------------------------------------------

COLUMNS = ["case", "convcalc", "PyTorch", "Keras", "outputs differ by"]


def _row(cells: list[str], markdown: bool, *, header: bool = False) -> str:
    if not markdown:
        return " | ".join(cells)
    if not header:
        cells = [f"`{cells[0]}`", *cells[1:]]
    line = "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
    return line + ("\n|" + "---|" * len(cells) if header else "")


def _shape(values: list[int]) -> str:
    return "x".join(str(v) for v in values)


def _input(text: str, target: str) -> torch.Tensor:
    """The zero input the module's own __main__ block runs."""
    call = "torch.zeros" if target == "pytorch" else "keras.ops.zeros("
    line = next(line for line in text.splitlines() if call in line)
    dims = line.split(call, 1)[1].split(")")[0].strip("(")
    return torch.zeros(*[int(n) for n in dims.split(",") if n.strip()])


def _holds(module: torch.nn.Module) -> bool:
    """True for a module with weights or statistics of its own."""
    return bool(list(module.parameters()) or list(module.buffers()))


def _copy(module: torch.nn.Module, layer: Any, before: Any) -> None:
    """Random weights for ``module``, copied into the Keras ``layer`` in its layout
    (``before`` is the layer feeding it: a Flatten fixes a Dense kernel's row order)."""
    with torch.no_grad():  # the weights as initialised; statistics and scales varied
        for tensor in module.buffers():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) * 0.5 + 0.75)
        if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d | torch.nn.BatchNorm3d
                      | torch.nn.LayerNorm) or hasattr(module, "gamma"):  # fmt: skip
            for tensor in module.parameters():
                tensor.copy_(torch.rand_like(tensor) * 0.5 + 0.75)
    name = type(layer).__name__
    weight: torch.Tensor = module.gamma if hasattr(module, "gamma") else module.weight
    bias = [module.bias] if isinstance(getattr(module, "bias", None), torch.Tensor) else []
    if name.startswith("DepthwiseConv"):  # (C·m, 1, *k) -> (*k, C, m)
        kernel = weight.reshape(layer.kernel.shape[-2], -1, *weight.shape[2:])
        values = [kernel.permute(*range(2, kernel.dim()), 0, 1), *bias]
    elif name.startswith("Conv"):  # (out, in, *k), transposed (in, out, *k) -> (*k, ., .)
        values = [weight.permute(*range(2, weight.dim()), 1, 0), *bias]
    elif name == "Dense":
        values = [_dense_kernel(weight, before), *bias]
    elif name == "BatchNormalization":
        values = [weight, *bias, module.running_mean, module.running_var]
    else:  # LayerNormalization, LayerScale
        values = [weight, *bias]
    layer.set_weights([v.detach().numpy() for v in values])


def _dense_kernel(weight: torch.Tensor, before: Any) -> torch.Tensor:
    """Linear's (out, C·H·W in NCHW order) as Dense's (H·W·C in NHWC order, out)."""
    shape = before.input.shape[1:] if type(before).__name__ == "Flatten" else ()
    if len(shape) < 2:
        return weight.T
    w = weight.reshape(weight.shape[0], shape[-1], *shape[:-1])
    return w.permute(0, *range(2, w.dim()), 1).reshape(weight.shape[0], -1).T


if __name__ == "__main__":
    sys.exit(main())
