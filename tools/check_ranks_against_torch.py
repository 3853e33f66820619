"""Compare `convcalc apply` at rank 1 (signals) and 3 (volumes) with PyTorch: the forward
values and the gradients of `convcalc.compute.gradients.backward` against autograd.

Not run by CI (PyTorch is not a dependency): `pip install torch` then
`python tools/check_ranks_against_torch.py [CASES] [-v]`. Random small layers at rank
1 and 3: convolution (stride, padding, pad modes, dilation, channels each/sum, several
filters, bias, flip, activations), transposed convolution through nn.ConvTranspose1d /
nn.ConvTranspose3d (output_padding), max and average pooling (ceil, padding, dilation),
and two-layer pipelines, with a random upstream gradient. Prints each mismatch and a
count per kind.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch_agreement import disagreement  # tools/, beside this script

from convcalc.calc.choices import Activation, ChannelMode, PadMode, PoolKind
from convcalc.calc.layers import Conv, Deconv, GlobalPool, Pointwise, Pool, Spec
from convcalc.compute.gradients import backward
from convcalc.compute.pipeline import Settings, Stage
from convcalc.errors import ConvcalcError

TORCH_PAD = {PadMode.REFLECT: "reflect", PadMode.REPLICATE: "replicate", PadMode.WRAP: "circular"}
ACTS = {
    Activation.NONE: lambda y: y,
    Activation.RELU: F.relu,
    Activation.LRELU: lambda y: F.leaky_relu(y, 0.01),
    Activation.SIGMOID: torch.sigmoid,
    Activation.TANH: torch.tanh,
}
CONV = {1: F.conv1d, 3: F.conv3d}
TRANSPOSED = {1: nn.ConvTranspose1d, 3: nn.ConvTranspose3d}
MAX_POOL = {1: F.max_pool1d, 3: F.max_pool3d}
AVG_POOL = {1: F.avg_pool1d, 3: F.avg_pool3d}


def t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=True)


def to_torch(a: np.ndarray) -> torch.Tensor:
    """(*N) x C to a leaf tensor (1, C, *N)."""
    return t(np.moveaxis(a, -1, 0)[None])


def from_torch(tensor: torch.Tensor) -> np.ndarray:
    return np.moveaxis(tensor.detach().numpy()[0], 0, -1)


def conv_case(rng: np.random.Generator, rank: int, deconv: bool) -> dict[str, Any]:
    c, f = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=rank))
    s, d = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    p = int(rng.integers(0, 3))
    flat = bool(rng.integers(2)) or c == 1  # kernels without a channel axis (each/sum)
    mode = ChannelMode.EACH if rng.integers(2) else ChannelMode.SUM
    pad_mode = PadMode.ZERO if deconv or rng.integers(2) else PadMode(rng.choice(list(TORCH_PAD)))
    low = max(max(kernel) * d, p + 1, 3)
    sizes = tuple(int(rng.integers(low, low + (6 if rank == 1 else 3))) for _ in range(rank))
    shape = kernel if flat else (*kernel, c)
    kernels = tuple(rng.normal(size=shape) for _ in range(f))
    bias = tuple(rng.normal(size=f)) if rng.integers(2) else None
    act = Activation(rng.choice(list(ACTS)))
    op = int(rng.integers(0, max(s, d))) if deconv else 0
    layer: Conv | Deconv = (
        Deconv(None, None, (s,), (p,), (d,), (op,), rank=rank)
        if deconv
        else Conv(None, None, (s,), (p,), (d,), rank=rank)
    )
    return {
        "x": rng.normal(size=(*sizes, c)),
        "stage": Stage(Spec(text=repr(layer), layer=layer), kernels, bias, act),
        "settings": Settings(
            pad_mode=pad_mode, channels=mode, flip=bool(rng.integers(2)), rank=rank
        ),
    }


def torch_conv(x: torch.Tensor, case: dict[str, Any], ks: list[torch.Tensor], b: Any) -> Any:
    stage, settings = case["stage"], case["settings"]
    layer, c, rank = stage.spec.layer, x.shape[1], settings.rank
    spatial = tuple(range(rank))
    planes = [torch.flip(k, spatial) if settings.flip else k for k in ks]
    each = planes[0].dim() == rank and c > 1 and settings.channels == ChannelMode.EACH
    f = len(planes)
    s, p, d = layer.stride[0], layer.padding[0], layer.dilation[0]
    full = [k.unsqueeze(rank).expand(*k.shape, c) if k.dim() == rank else k for k in planes]
    bias = None if b is None else (b.repeat(c) if each else b)
    if isinstance(layer, Deconv):
        if each:  # weight (C, F, *K), output channel c·F + f
            weight = torch.stack([torch.stack(planes) for _ in range(c)])
        else:  # (F, *K, C) to (C, F, *K)
            weight = torch.stack(full).permute(rank + 1, 0, *range(1, rank + 1))
        module = TRANSPOSED[rank](
            c,
            weight.shape[1] * (c if each else 1),
            tuple(weight.shape[2:]),
            stride=s,
            padding=p,
            output_padding=layer.output_padding[0],
            groups=c if each else 1,
            bias=bias is not None,
            dilation=d,
        ).double()
        tensors = {"weight": weight} | ({} if bias is None else {"bias": bias})
        y = torch.func.functional_call(module, tensors, (x,))  # the module, our weights
    else:
        if settings.pad_mode != PadMode.ZERO and p:
            x = F.pad(x, (p, p) * rank, mode=TORCH_PAD[settings.pad_mode])
            p = 0
        if each:  # weight (C·F, 1, *K), output channel c·F + f
            weight = torch.stack([planes[i] for _ in range(c) for i in range(f)]).unsqueeze(1)
        else:  # (F, *K, C) to (F, C, *K)
            weight = torch.stack(full).permute(0, rank + 1, *range(1, rank + 1))
        y = CONV[rank](x, weight, bias, s, p, d, c if each else 1)
    y = ACTS[stage.activation](y)
    if each:  # channel by channel to filter by filter, as convcalc's output
        n, _, *out = y.shape
        y = y.reshape(n, c, f, *out).transpose(1, 2).reshape(n, c * f, *out)
    return y


def pool_case(rng: np.random.Generator, rank: int) -> dict[str, Any]:
    kind = PoolKind.MAX if rng.integers(2) else PoolKind.AVG
    k, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    p = int(rng.integers(0, k // 2 + 1))
    d = int(rng.integers(1, 3)) if kind == PoolKind.MAX else 1
    layer = Pool(kind, (k,), (s,), (p,), (d,), bool(rng.integers(2)), rank)
    low = k * d
    sizes = tuple(int(rng.integers(low, low + (7 if rank == 1 else 4))) for _ in range(rank))
    x = rng.integers(-3, 4, size=(*sizes, 2)).astype(float)  # small integers: ties happen
    return {"x": x, "stage": Stage(Spec(text=repr(layer), layer=layer)), "settings": None}


def torch_pool(x: torch.Tensor, layer: Pool, rank: int) -> torch.Tensor:
    k, s, p, d = layer.kernel[0], layer.stride[0], layer.padding[0], layer.dilation[0]
    if layer.kind == PoolKind.MAX:
        return MAX_POOL[rank](x, k, s, p, d, ceil_mode=layer.ceil)
    return AVG_POOL[rank](x, k, s, p, ceil_mode=layer.ceil, count_include_pad=True)


def torch_stage(x: torch.Tensor, case: dict[str, Any], params: dict[str, Any], rank: int) -> Any:
    layer = case["stage"].spec.layer
    spatial = tuple(range(2, 2 + rank))
    if isinstance(layer, Conv | Deconv):
        return torch_conv(x, case, params["k"], params["b"])
    if isinstance(layer, Pool):
        return torch_pool(x, layer, rank)
    if isinstance(layer, GlobalPool):
        if layer.kind == PoolKind.MAX:
            return x.amax(spatial, keepdim=True)
        return x.mean(spatial, keepdim=True)
    return {"relu": F.relu, "tanh": torch.tanh, "softmax": lambda v: F.softmax(v, 1)}[layer.name](x)


def check(cases: list[dict[str, Any]], settings: Settings, rng: np.random.Generator) -> str | None:
    """None when convcalc and torch agree on the chain of ``cases`` (stages), else why."""
    stages = [case["stage"] for case in cases]
    x0 = cases[0]["x"]
    try:
        forward = backward(x0, stages, settings)
    except ConvcalcError as exc:
        return f"refused: {exc}"
    g = rng.normal(size=forward.output.shape)
    ours = backward(x0, stages, settings, g)
    x = to_torch(x0)
    y, params = x, []
    for case in cases:
        stage = case["stage"]
        ks = [t(k) for k in stage.kernels]
        b = None if stage.bias is None else t(np.array(stage.bias))
        params.append({"k": ks, "b": b})
        y = torch_stage(y, case | {"settings": settings}, params[-1], settings.rank)
    (y * to_torch(g).detach()).sum().backward()
    assert x.grad is not None
    return disagreement(ours, from_torch(y), from_torch(x.grad), params)


def chain(rng: np.random.Generator, n: int, rank: int) -> tuple[str, list[dict[str, Any]], Any]:
    """Case ``n``'s kind, stages and settings."""
    kind = ("conv", "conv", "transposed", "pool", "pipeline", "pipeline")[n % 6]
    if kind == "pool":
        case = pool_case(rng, rank)
        return kind, [case], Settings(rank=rank)
    first = conv_case(rng, rank, deconv=kind == "transposed")
    if kind != "pipeline":
        return kind, [first], first["settings"]
    tail = [
        Pointwise(name="tanh"),
        Pointwise(name="softmax"),
        GlobalPool(kind=PoolKind.MAX),
        GlobalPool(kind=PoolKind.AVG),
        Pool(kind=PoolKind.MAX, kernel=(2,), stride=(1,), rank=rank),
    ][int(rng.integers(5))]
    return kind, [first, {"stage": Stage(Spec(text=repr(tail), layer=tail))}], first["settings"]


def main() -> None:
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    count = int(numbers[0]) if numbers else 600
    rng = np.random.default_rng(0)
    agree: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    mismatched = 0
    for n in range(count):
        rank = 1 if n % 2 == 0 else 3
        kind, cases, settings = chain(rng, n // 2, rank)
        label = f"{kind} {rank}-D"
        why = check(cases, settings, rng)
        if why is None:
            agree[label] += 1
        elif why.startswith("refused"):
            refused[label] += 1
            if "-v" in sys.argv:
                print(why)
        else:
            mismatched += 1
            print(f"MISMATCH {why}: {label} {[c['stage'].spec.text for c in cases]}")
    for label in sorted(agree | refused):
        print(f"{label}: {agree[label]} agree, {refused[label]} refused as invalid layers")
    print(
        f"{sum(agree.values())} of {count} cases agree with torch (forward and autograd), "
        f"{mismatched} mismatch, {sum(refused.values())} refused as invalid layers"
    )


if __name__ == "__main__":
    main()
