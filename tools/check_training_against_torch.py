"""Compare convcalc's training costs with what PyTorch really saves and computes.

Not run by CI (PyTorch is not a dependency). In a scratch venv:
    pip install torch==2.13.0 torchvision==0.28.0 && pip install -e .
    python tools/check_training_against_torch.py [--verbose] [--batch N] [PRESET ...]

For each preset's torchvision twin (GoogLeNet and Inception-v3 without their auxiliary
classifiers, no weights loaded), at its published input size, batch 8 (--batch),
float32, in train() mode, with an input image that does not require grad, it runs one
forward pass and one backward pass of loss = output.sum() on the CPU and measures:

- saved activations: the bytes autograd keeps for backward. The forward runs inside
  torch.autograd.graph.saved_tensors_hooks; the pack hook records every saved tensor's
  untyped storage (data_ptr and nbytes) unless that storage is one of the model's
  parameters or buffers; the figure is the sum of nbytes over unique storages (a tensor
  saved by two nodes, or a view of a saved tensor, counts once; the input image counts,
  as the first convolution saves it; max pooling's int64 indices count at 8 bytes; on
  the CPU dropout saves a float32 mask, on CUDA it would be a bool one);
- forward and backward MACs: torch.utils.flop_counter.FlopCounterMode's total FLOPs
  around the forward and around loss.backward(), halved. It counts convolutions and
  matrix products only; the first convolution computes no input gradient. For
  aten.convolution_backward the tool passes its own formula (each gradient asked for
  costs as much as the forward convolution), as torch 2.13's counts a grouped
  convolution's weight gradient `groups` times over (fixed upstream in
  pytorch/pytorch#183405); the shipped formula's figures are printed under the table
  where they differ.

Beside them it prints convcalc's figures: the "training" object of
    python -m convcalc shape HxWx3 --net NAME --training --batch 8 --optimizer sgd
        --dtype fp32 --json
(activations_bytes, backward_macs, forward_macs, whole batch), run with the same Python;
a cell reads "convcalc: n/a" when convcalc fails. Ratios are convcalc / torch.

--verbose then prints, per preset, which autograd nodes save what: every saved tensor,
found by walking the graph from the output before backward, grouped by the node's class
and the saved attribute (self, input, result, other, ...; max pooling's indices and batch
norm's mean and inverse deviation are result1 and result2) with its dtype; a storage is
credited to the first node in forward order that saves it, and the bytes a later node
saves again are listed as shared. A tensor saved by an in-place op on a view sits inside
a CopySlices node that the walk cannot open; its bytes are listed apart.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field

sys.modules["torchvision._meta_registrations"] = types.ModuleType("meta")  # CPU-only torch

import torch  # noqa: E402
import torchvision.models as tvm  # noqa: E402
from torch.autograd.graph import Node, saved_tensors_hooks  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

CASES = [
    ("resnet18", 224), ("resnet50", 224), ("mobilenetv2", 224), ("googlenet", 224),
    ("vgg16", 224), ("densenet121", 224), ("squeezenet1_1", 224),
    ("mobilenet_v3_large", 224), ("efficientnet_b0", 224), ("convnext_tiny", 224),
    ("inception_v3", 299),
]  # fmt: skip
"""(preset, published input size)."""


@dataclass
class Share:
    """What one kind of saved tensor (node class, attribute, dtype) adds up to."""

    tensors: int = 0
    counted: int = 0  # bytes of storages first saved here
    shared: int = 0  # bytes of storages an earlier node already saved


@dataclass
class Measured:
    saved_bytes: int
    forward_macs: int
    backward_macs: int
    shipped_backward_macs: int = 0  # torch 2.13's FlopCounterMode formula, unfixed
    shares: dict[str, Share] = field(default_factory=dict)
    unattributed: int = 0  # saved bytes the graph walk did not find


def torch_model(name: str) -> torch.nn.Module:
    """torchvision's model of a preset; GoogLeNet and Inception-v3 without their
    auxiliary classifiers; no weights are loaded."""
    builder = {"mobilenetv2": tvm.mobilenet_v2}.get(name) or getattr(tvm, name)
    if name in ("googlenet", "inception_v3"):
        return builder(aux_logits=False, init_weights=False)
    return builder()


def storage(tensor: torch.Tensor) -> tuple[int, int]:
    """The data_ptr and nbytes of the tensor's untyped storage."""
    untyped = tensor.untyped_storage()
    return untyped.data_ptr(), untyped.nbytes()


class SavedRecorder:
    """Pack/unpack hooks that record the storages autograd saves, except ``skip``."""

    def __init__(self, skip: set[int]) -> None:
        self.skip = skip
        self.sizes: dict[int, int] = {}

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        ptr, nbytes = storage(tensor)
        if ptr not in self.skip and nbytes:
            self.sizes[ptr] = nbytes
        return tensor

    def unpack(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor


def graph_nodes(root: Node) -> list[Node]:
    """Every node of the autograd graph under ``root``, in forward order."""
    seen: dict[int, Node] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(child for child, _ in node.next_functions if child is not None)
    return sorted(seen.values(), key=lambda node: node._sequence_nr())


def saved_by(node: Node) -> Iterator[tuple[str, torch.Tensor]]:
    """The tensors a node saved, by attribute name (``_saved_self`` -> ``self``)."""
    for attr in dir(node):
        if not attr.startswith("_saved_"):
            continue
        try:
            value = getattr(node, attr)
        except RuntimeError:  # freed, or not a tensor
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, torch.Tensor):
                yield attr.removeprefix("_saved_"), item


def attribute(output: torch.Tensor, sizes: dict[int, int], image: int) -> Measured:
    """Group the recorded storages by the node class and attribute that saved them."""
    measured = Measured(sum(sizes.values()), 0, 0)
    first: set[int] = set()
    assert output.grad_fn is not None
    for node in graph_nodes(output.grad_fn):
        for name, tensor in saved_by(node):
            ptr, _ = storage(tensor)
            if ptr not in sizes:
                continue
            dtype = str(tensor.dtype).removeprefix("torch.")
            key = f"{type(node).__name__}.{name} ({dtype}{', image' if ptr == image else ''})"
            share = measured.shares.setdefault(key, Share())
            share.tensors += 1
            if ptr in first:
                share.shared += sizes[ptr]
            else:
                share.counted += sizes[ptr]
                first.add(ptr)
    measured.unattributed = sum(size for ptr, size in sizes.items() if ptr not in first)
    return measured


def conv_backward_flop(
    grad_out_shape: list[int],
    x_shape: list[int],
    w_shape: list[int],
    _bias: object,
    _stride: object,
    _padding: object,
    _dilation: object,
    transposed: bool,
    _output_padding: object,
    _groups: int,
    output_mask: list[bool],
    **_: object,
) -> int:
    """FLOPs of aten.convolution_backward: each gradient asked for (input, weight) costs
    as much as the forward convolution. torch 2.13's own formula counts a grouped
    convolution's weight gradient ``groups`` times over (pytorch/pytorch#183405)."""
    spatial = (x_shape if transposed else grad_out_shape)[2:]
    macs = grad_out_shape[0] * math.prod(spatial) * math.prod(w_shape)
    return 2 * macs * sum(bool(asked) for asked in output_mask[:2])


def measure(model: torch.nn.Module, x: torch.Tensor) -> Measured:
    """Saved bytes and forward/backward MACs of one training step of ``model`` on ``x``."""
    own = {storage(t)[0] for t in [*model.parameters(), *model.buffers()]}
    recorder = SavedRecorder(own)
    hooks = saved_tensors_hooks(recorder.pack, recorder.unpack)
    with hooks, FlopCounterMode(display=False) as forward:
        output = model(x)
    measured = attribute(output, recorder.sizes, storage(x)[0])
    loss = output.sum()
    fixed = {torch.ops.aten.convolution_backward: conv_backward_flop}
    shipped = FlopCounterMode(display=False)  # sees every op that backward counts
    backward = FlopCounterMode(display=False, custom_mapping=fixed)
    with shipped, backward:
        loss.backward()
    measured.forward_macs = forward.get_total_flops() // 2
    measured.backward_macs = backward.get_total_flops() // 2
    measured.shipped_backward_macs = shipped.get_total_flops() // 2
    return measured


def convcalc_training(name: str, size: int, batch: int) -> dict[str, int] | str:
    """convcalc's ``training`` JSON object for the preset, or why there is none."""
    command = [sys.executable, "-m", "convcalc", "shape", f"{size}x{size}x3", "--net", name]
    command += ["--training", "--batch", str(batch), "--optimizer", "sgd", "--dtype", "fp32"]
    try:
        done = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0]
    try:
        return json.loads(done.stdout)["training"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"no training object in the JSON ({exc!r})"


def cell(ours: dict[str, int] | str, key: str, theirs: int) -> str:
    """``convcalc / torch (ratio)``, or ``convcalc: n/a / torch``."""
    value = ours.get(key) if isinstance(ours, dict) else None
    if not isinstance(value, int):
        return f"convcalc: n/a / {theirs:,}"
    return f"{value:,} / {theirs:,} ({value / theirs:.3f})"


def breakdown(name: str, measured: Measured) -> list[str]:
    """The --verbose lines for one preset: what each kind of node saves, largest first."""
    lines = [f"\n{name}: {measured.saved_bytes:,} bytes saved", ""]
    lines.append("| node.attribute (dtype) | tensors | bytes counted | bytes shared |")
    lines.append("|---|---|---|---|")
    shares = sorted(measured.shares.items(), key=lambda item: -item[1].counted)
    for key, share in shares:
        lines.append(f"| {key} | {share.tensors} | {share.counted:,} | {share.shared:,} |")
    if measured.unattributed:
        hidden = "(saved by a node the walk cannot see: an in-place op on a view, in CopySlices)"
        lines.append(f"| {hidden} | | {measured.unattributed:,} | |")
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", help="presets to check (default: all)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("-v", "--verbose", action="store_true", help="what each node saves")
    args = parser.parse_args()
    unknown = set(args.presets) - {name for name, _ in CASES}
    if unknown:
        parser.error(f"no torchvision twin for {', '.join(sorted(unknown))}")
    return args


def footnotes(shipped: dict[str, int], failures: dict[str, str]) -> list[str]:
    """The lines under the table: FlopCounterMode's unfixed figures, convcalc's errors."""
    lines = []
    if shipped:
        figures = ", ".join(f"{name} {macs:,}" for name, macs in shipped.items())
        lines.append(
            "\nBackward MACs as torch 2.13's FlopCounterMode counts them, grouped "
            f"convolutions' weight gradients `groups` times over: {figures}."
        )
    reasons: dict[str, list[str]] = {}
    for name, reason in failures.items():
        reasons.setdefault(reason, []).append(name)
    for reason, names in reasons.items():
        lines.append(f"\nconvcalc: n/a for {', '.join(names)}: {reason}")
    return lines


def main() -> None:
    args = parse_args()
    columns = ["preset", "input", "saved activations", "backward MACs", "forward MACs"]
    print("| " + " | ".join(columns) + " |  (each convcalc / torch (ratio))")
    print("|---|---|---|---|---|")
    details: list[str] = []
    shipped: dict[str, int] = {}
    failures: dict[str, str] = {}
    for name, size in CASES:
        if args.presets and name not in args.presets:
            continue
        torch.manual_seed(0)
        model = torch_model(name).train()
        measured = measure(model, torch.randn(args.batch, 3, size, size))
        if measured.shipped_backward_macs != measured.backward_macs:
            shipped[name] = measured.shipped_backward_macs
        ours = convcalc_training(name, size, args.batch)
        if isinstance(ours, str):
            failures[name] = ours
        cells = [
            cell(ours, "activations_bytes", measured.saved_bytes),
            cell(ours, "backward_macs", measured.backward_macs),
            cell(ours, "forward_macs", measured.forward_macs),
        ]
        print(f"| {name} | {size}x{size}x3 | " + " | ".join(cells) + " |", flush=True)
        details += breakdown(name, measured)
    print("\n".join(footnotes(shipped, failures)))
    if args.verbose:
        print("\n".join(details))


if __name__ == "__main__":
    main()
