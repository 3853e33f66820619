"""Compare convcalc's presets with torchvision's models: parameters, MACs, memory.

Not run by CI (PyTorch is not a dependency). In a scratch venv:
    pip install torch==2.13.0 torchvision==0.28.0 && pip install -e .
    python tools/check_presets_against_torch.py [PRESET ...]
For each preset and input size it prints convcalc's trainable parameters, MACs and
activation memory beside PyTorch's: parameters from the model, MACs as
torch.utils.flop_counter's FLOPs / 2, memory as the float32 bytes of every
convolution, batch norm, pooling and linear output plus each residual sum (the
tensors convcalc's presets list; activations are left out of both), and the receptive
field of the centre unit of the last feature map: the input rows it covers (clipped to
the image) against the support of that unit's gradient in PyTorch (activations made
identities and max pools average pools, so that no gradient is cut off).
"""

from __future__ import annotations

import sys
import types

sys.modules["torchvision._meta_registrations"] = types.ModuleType("meta")  # CPU-only torch

import torch  # noqa: E402
import torchvision.models as tvm  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from convcalc.calc.evaluation import evaluate  # noqa: E402
from convcalc.calc.layers import network_rank  # noqa: E402
from convcalc.calc.presets import load_network  # noqa: E402
from convcalc.calc.sizes import parse_shape  # noqa: E402

CASES = [
    ("alexnet", 224), ("alexnet", 256), ("vgg11", 224), ("vgg13", 224), ("vgg16", 224),
    ("vgg16", 32), ("vgg19", 224), ("resnet18", 224), ("resnet34", 224), ("resnet50", 224),
    ("resnet50", 160), ("resnet101", 224), ("resnet152", 224), ("googlenet", 224),
    ("inception_v3", 299), ("densenet121", 224), ("squeezenet1_1", 224), ("mobilenetv2", 224),
    ("mobilenet_v3_large", 224), ("efficientnet_b0", 224), ("convnext_tiny", 224),
]  # fmt: skip
"""(preset, input size): each at its published size, some at another too."""

COUNTED = (
    torch.nn.Conv2d,
    torch.nn.BatchNorm2d,
    torch.nn.Linear,
    torch.nn.MaxPool2d,
    torch.nn.AvgPool2d,
    torch.nn.AdaptiveAvgPool2d,
)


def torch_model(name: str) -> torch.nn.Module | None:
    """torchvision's model of a preset, as the presets count it: GoogLeNet and
    Inception-v3 without their auxiliary classifiers; no weights are loaded."""
    builders = {"mobilenetv2": tvm.mobilenet_v2}
    builder = builders.get(name) or getattr(tvm, name, None)
    if builder is None:
        return None
    if name in ("googlenet", "inception_v3"):
        return builder(aux_logits=False, init_weights=False)
    return builder()


def torch_memory(model: torch.nn.Module, x: torch.Tensor) -> int:
    total = 0

    def count(module: torch.nn.Module, _: object, out: torch.Tensor) -> None:
        nonlocal total
        residual = getattr(module, "use_res_connect", None)
        sums = type(module).__name__ in ("BasicBlock", "Bottleneck") or residual is True
        if isinstance(module, COUNTED) or sums:
            total += out.numel() * 4

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return total


class _PlusOne(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


def linearized(model: torch.nn.Module) -> torch.nn.Module:
    """The model with every activation an identity and every max pool an average pool of
    the same window: the same receptive field, but no unit's gradient is cut off by a
    negative pre-activation or a losing window cell."""
    activations = (
        torch.nn.ReLU,
        torch.nn.ReLU6,
        torch.nn.Hardswish,
        torch.nn.SiLU,
        torch.nn.GELU,
        torch.nn.Dropout,
    )
    gates = (torch.nn.Sigmoid, torch.nn.Hardsigmoid)
    for parent in list(model.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, activations):
                setattr(parent, child_name, torch.nn.Identity())
            elif isinstance(child, gates):  # x + 1: a gate that never vanishes
                setattr(parent, child_name, _PlusOne())
            elif isinstance(child, torch.nn.MaxPool2d):
                setattr(
                    parent,
                    child_name,
                    torch.nn.AvgPool2d(
                        child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode
                    ),
                )
    return model


def measured_field(
    model: torch.nn.Module, x: torch.Tensor, spatial: list[int], channels: int
) -> tuple[int, int] | None:
    """The input rows the centre unit of the last feature map of ``spatial`` x
    ``channels`` depends on (the support of its gradient), or None if none matches."""
    outputs: list[torch.Tensor] = []

    def keep(module: torch.nn.Module, _: object, out: object) -> None:
        if (
            isinstance(out, torch.Tensor)
            and out.dim() == 4
            and list(out.shape[2:]) == spatial
            and out.shape[1] == channels
        ):
            outputs.append(out)

    hooks = [m.register_forward_hook(keep) for m in model.modules()]
    x = x.clone().requires_grad_(True)
    model(x)
    for hook in hooks:
        hook.remove()
    if not outputs:
        return None
    i, j = spatial[0] // 2, spatial[1] // 2
    outputs[-1][0, :, i, j].sum().backward()
    assert x.grad is not None
    rows = (x.grad[0].abs().sum(dim=(0, 2)) > 0).nonzero().flatten()
    return int(rows.min()), int(rows.max())


def predicted_field(result, size: int) -> tuple[list[int], int, tuple[int, int] | None]:
    """convcalc's last spatial layer (before global pooling): its HxW, its channels, and
    the input rows of its centre unit's field, clipped to the image (None: all of it)."""
    last = [
        layer
        for layer in result.layers
        if len(layer.output.spatial) == 2 and min(layer.output.spatial) > 1
    ][-1]
    spatial, field = list(last.output.spatial), last.receptive_field
    if field is None:
        return spatial, last.output.c, None
    centre = field.start[0] + (spatial[0] // 2) * field.jump[0]
    half = (field.size[0] - 1) / 2
    return (
        spatial,
        last.output.c,
        (max(0, round(centre - half)), min(size - 1, round(centre + half))),
    )


def main() -> None:
    columns = ["preset", "input", "params", "MACs", "memory", "output", "field rows"]
    print("| " + " | ".join(columns) + " |  (each convcalc / torch)")
    print("|---|---|---|---|---|---|---|")
    only = set(sys.argv[1:])  # optional: the presets to check
    for name, size in CASES:
        if only and name not in only:
            continue
        model = torch_model(name)
        if model is None:
            continue
        model.eval()
        try:
            specs = load_network(name)
        except Exception as exc:  # a preset not written yet
            print(f"| {name} | {size} | {exc} |")
            continue
        result = evaluate(
            specs, parse_shape(f"{size}x{size}x3", network_rank([s.layer for s in specs]))
        )
        x = torch.zeros(1, 3, size, size)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        macs = counter.get_total_flops() // 2
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        memory = torch_memory(model, x)
        with torch.no_grad():
            shape = list(model(x).shape[1:])
        spatial, channels, ours = predicted_field(result, size)
        theirs = measured_field(linearized(model), torch.randn(1, 3, size, size), spatial, channels)
        ours_text = "all" if ours is None else f"{list(ours)}"
        print(
            f"| {name} | {size} | {result.total_params:,} / {params:,} | "
            f"{result.total_macs:,} / {macs:,} ({result.total_macs / macs - 1:+.2%}) | "
            f"{result.total_memory:,} / {memory:,} ({result.total_memory / memory - 1:+.2%}) | "
            f"{result.output.as_list()} / {shape} | {ours_text} / "
            f"{'?' if theirs is None else list(theirs)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
