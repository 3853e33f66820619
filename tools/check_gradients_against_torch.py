"""Compare `convcalc apply --backward`'s gradients with PyTorch's autograd.

Not run by CI (PyTorch is not a dependency): `pip install torch` then
`python tools/check_gradients_against_torch.py [CASES]`. Random small layers
(convolution with stride, padding, pad modes, dilation, channels each/sum, several
filters, bias, flip, activations; transposed convolution; max and average pooling;
global pooling; two-layer pipelines) run through `convcalc.compute.gradients.backward`
and through torch with a random upstream gradient. Then grouped convolutions (`g=G`,
`apply --groups G`) at rank 1, 2 and 3 against nn.Conv1d/2d/3d(groups=G) with the
filters as their weight: the forward values and the gradients of the input, of every
filter and of the bias. Prints each mismatch and a count.
"""

from __future__ import annotations

import sys
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


def t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=True)


def nchw(a: np.ndarray) -> torch.Tensor:
    return t(a.transpose(2, 0, 1)[None])


def hwc(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().numpy()[0].transpose(1, 2, 0)


def conv_case(rng: np.random.Generator, deconv: bool) -> dict[str, Any]:
    c, f = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    s, d = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    p = int(rng.integers(0, 3))
    flat = bool(rng.integers(2)) or c == 1  # 2-D kernels (each/sum) or KHxKWxC
    mode = ChannelMode.EACH if rng.integers(2) else ChannelMode.SUM
    pad_mode = PadMode.ZERO if deconv or rng.integers(2) else PadMode(rng.choice(list(TORCH_PAD)))
    h, w = int(rng.integers(max(kh * d, p + 1, 3), 9)), int(rng.integers(max(kw * d, p + 1, 3), 9))
    shape = (kh, kw) if flat else (kh, kw, c)
    kernels = tuple(rng.normal(size=shape) for _ in range(f))
    bias = tuple(rng.normal(size=f)) if rng.integers(2) else None
    act = Activation(rng.choice(list(ACTS)))
    op = int(rng.integers(0, s)) if deconv else 0
    layer = (
        Deconv(
            out=None, kernel=None, stride=(s,), padding=(p,), dilation=(d,), output_padding=(op,)
        )
        if deconv
        else Conv(out=None, kernel=None, stride=(s,), padding=(p,), dilation=(d,))
    )
    return {
        "x": rng.normal(size=(h, w, c)),
        "stage": Stage(Spec(text=repr(layer), layer=layer), kernels, bias, act),
        "settings": Settings(pad_mode=pad_mode, channels=mode, flip=bool(rng.integers(2))),
    }


def torch_conv(x: torch.Tensor, case: dict[str, Any], ks: list[torch.Tensor], b: Any) -> Any:
    stage, settings = case["stage"], case["settings"]
    layer, c = stage.spec.layer, x.shape[1]
    planes = [torch.flip(k, (0, 1)) if settings.flip else k for k in ks]
    each = planes[0].dim() == 2 and c > 1 and settings.channels == ChannelMode.EACH
    f = len(planes)
    s, p, d = layer.stride[0], layer.padding[0], layer.dilation[0]
    if isinstance(layer, Deconv):
        if each:  # weight (C, F, KH, KW), output channel c·F + f
            weight = torch.stack([torch.stack(planes) for _ in range(c)])
        else:
            full = [k.unsqueeze(2).expand(*k.shape[:2], c) if k.dim() == 2 else k for k in planes]
            weight = torch.stack(full).permute(3, 0, 1, 2)
        bias = None if b is None else (b.repeat(c) if each else b)
        y = F.conv_transpose2d(x, weight, bias, s, p, layer.output_padding[0], c if each else 1, d)
    else:
        if settings.pad_mode != PadMode.ZERO and p:
            x = F.pad(x, (p, p, p, p), mode=TORCH_PAD[settings.pad_mode])
            p = 0
        if each:  # weight (C·F, 1, KH, KW), output channel c·F + f
            weight = torch.stack([planes[i] for _ in range(c) for i in range(f)]).unsqueeze(1)
        else:
            full = [k.unsqueeze(2).expand(*k.shape[:2], c) if k.dim() == 2 else k for k in planes]
            weight = torch.stack(full).permute(0, 3, 1, 2)
        bias = None if b is None else (b.repeat(c) if each else b)
        y = F.conv2d(x, weight, bias, s, p, d, c if each else 1)
    y = ACTS[stage.activation](y)
    if each:  # channel by channel to filter by filter, as convcalc's output
        n, _, ho, wo = y.shape
        y = y.reshape(n, c, f, ho, wo).transpose(1, 2).reshape(n, c * f, ho, wo)
    return y


def pool_case(rng: np.random.Generator) -> dict[str, Any]:
    kind = PoolKind.MAX if rng.integers(2) else PoolKind.AVG
    k, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    p = int(rng.integers(0, k // 2 + 1))
    d = int(rng.integers(1, 3)) if kind == PoolKind.MAX else 1
    layer = Pool(
        kind=kind, kernel=(k,), stride=(s,), padding=(p,), dilation=(d,), ceil=bool(rng.integers(2))
    )
    x = rng.integers(-3, 4, size=(int(rng.integers(k * d, 9)), int(rng.integers(k * d, 9)), 2))
    return {
        "x": x.astype(float),
        "stage": Stage(Spec(text=repr(layer), layer=layer)),
        "settings": Settings(),
    }


def torch_pool(x: torch.Tensor, layer: Pool) -> torch.Tensor:
    k, s, p, d = layer.kernel[0], layer.stride[0], layer.padding[0], layer.dilation[0]
    if layer.kind == PoolKind.MAX:
        return F.max_pool2d(x, k, s, p, d, ceil_mode=layer.ceil)
    return F.avg_pool2d(x, k, s, p, ceil_mode=layer.ceil, count_include_pad=True)


def torch_stage(x: torch.Tensor, case: dict[str, Any], params: dict[str, Any]) -> torch.Tensor:
    layer = case["stage"].spec.layer
    if isinstance(layer, Conv | Deconv):
        return torch_conv(x, case, params["k"], params["b"])
    if isinstance(layer, Pool):
        return torch_pool(x, layer)
    if isinstance(layer, GlobalPool):
        return (
            x.amax((2, 3), keepdim=True)
            if layer.kind == PoolKind.MAX
            else x.mean((2, 3), keepdim=True)
        )
    return {"relu": F.relu, "tanh": torch.tanh, "softmax": lambda v: F.softmax(v, 1)}[layer.name](x)


def check(cases: list[dict[str, Any]], rng: np.random.Generator) -> str | None:
    """None when convcalc and torch agree on the chain of ``cases`` (stages), else why."""
    stages = [case["stage"] for case in cases]
    settings = cases[0]["settings"]
    try:
        forward = backward(cases[0]["x"], stages, settings)
    except ConvcalcError as exc:
        return f"refused: {exc}"
    g = rng.normal(size=forward.output.shape)
    ours = backward(cases[0]["x"], stages, settings, g)
    x = nchw(cases[0]["x"])
    y, params = x, []
    for case in cases:
        stage = case["stage"]
        ks = [t(k) for k in stage.kernels]
        b = None if stage.bias is None else t(np.array(stage.bias))
        params.append({"k": ks, "b": b})
        y = torch_stage(y, case | {"settings": settings}, params[-1])
    (y * nchw(g).detach()).sum().backward()
    assert x.grad is not None
    return disagreement(ours, hwc(y), hwc(x.grad), params)


GROUPED_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def grouped_case(rng: np.random.Generator, rank: int) -> dict[str, Any]:
    """A random grouped layer: C = G·(C/G) channels, F = G·(F/G) filters, each C/G deep."""
    groups, depth, per_group = (int(v) for v in rng.integers(1, 4, size=3))
    c, f = groups * depth, groups * per_group
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=rank))
    s, d, p = int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(0, 3))
    low = max(max(kernel) * d, p + 1, 3)
    sizes = tuple(int(rng.integers(low, low + (6 if rank == 1 else 3))) for _ in range(rank))
    flat = depth == 1 and bool(rng.integers(2))  # a one-channel filter may omit its axis
    shape = kernel if flat else (*kernel, depth)
    pad_mode = PadMode.ZERO if rng.integers(2) else PadMode(rng.choice(list(TORCH_PAD)))
    layer = Conv(None, None, (s,), (p,), (d,), groups, rank=rank)
    return {
        "x": rng.normal(size=(*sizes, c)),
        "stage": Stage(
            Spec(text=repr(layer), layer=layer),
            tuple(rng.normal(size=shape) for _ in range(f)),
            tuple(rng.normal(size=f)) if rng.integers(2) else None,
            Activation(rng.choice(list(ACTS))),
        ),
        "settings": Settings(pad_mode=pad_mode, flip=bool(rng.integers(2)), rank=rank),
    }


def check_grouped(case: dict[str, Any], rng: np.random.Generator) -> str | None:
    """None when convcalc and nn.ConvNd(groups=G) agree on a grouped layer, else why."""
    stage, settings = case["stage"], case["settings"]
    layer, rank, x0 = stage.spec.layer, settings.rank, case["x"]
    try:
        forward = backward(x0, [stage], settings)
    except ConvcalcError as exc:
        return f"refused: {exc}"
    g = rng.normal(size=forward.output.shape)
    ours = backward(x0, [stage], settings, g)
    x = t(np.moveaxis(x0, -1, 0)[None])
    ks = [t(k) for k in stage.kernels]
    spatial = tuple(range(rank))
    # filter f, (*K) x C/G (or *K), as torch's weight[f]: (C/G, *K)
    weight = torch.stack(
        [
            torch.movedim(k.reshape(*k.shape[:rank], -1), rank, 0)
            for k in (torch.flip(k, spatial) if settings.flip else k for k in ks)
        ]
    )
    b = None if stage.bias is None else t(np.array(stage.bias))
    s, p, d = layer.stride[0], layer.padding[0], layer.dilation[0]
    xin = x
    if settings.pad_mode != PadMode.ZERO and p:
        xin, p = F.pad(x, (p, p) * rank, mode=TORCH_PAD[settings.pad_mode]), 0
    module = GROUPED_CONV[rank](
        x.shape[1], len(ks), tuple(weight.shape[2:]), s, p, d, layer.groups, b is not None
    ).double()
    tensors = {"weight": weight} | ({} if b is None else {"bias": b})
    y = ACTS[stage.activation](torch.func.functional_call(module, tensors, (xin,)))
    (y * t(np.moveaxis(g, -1, 0)[None]).detach()).sum().backward()

    def ours_(a: np.ndarray) -> np.ndarray:
        return np.moveaxis(a, -1, 0)[None]

    problems = [] if np.allclose(y.detach().numpy(), ours_(ours.output)) else ["forward output"]
    if not np.allclose(x.grad.numpy(), ours_(ours.grad_input)):
        problems.append("grad_input")
    mine = ours.layers[0]
    assert mine is not None
    for f, (gk, k) in enumerate(zip(mine.kernels, ks, strict=True)):
        if not np.allclose(gk, k.grad.numpy()):
            problems.append(f"grad_kernel[{f}]")
    if b is not None and not np.allclose(mine.bias, b.grad.numpy()):
        problems.append("grad_bias")
    return ", ".join(problems) or None


def main() -> None:
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    count = int(numbers[0]) if numbers else 600
    rng = np.random.default_rng(0)
    agree = refused = 0
    for n in range(count):
        kind = n % 6
        if kind < 2:
            chain = [conv_case(rng, deconv=False)]
        elif kind == 2:
            chain = [conv_case(rng, deconv=True)]
        elif kind == 3:
            chain = [pool_case(rng)]
        else:  # a pipeline: a convolution, then pooling or a pointwise layer or a global pool
            first = conv_case(rng, deconv=False)
            h, w = first["x"].shape[:2]
            tail_layer = [
                Pointwise(name="tanh"),
                Pointwise(name="softmax"),
                GlobalPool(kind=PoolKind.MAX),
                GlobalPool(kind=PoolKind.AVG),
                Pool(kind=PoolKind.MAX, kernel=(2,), stride=(1,)),
            ][int(rng.integers(5))]
            chain = [first, {"stage": Stage(Spec(text=repr(tail_layer), layer=tail_layer))}]
            del h, w
        why = check(chain, rng)
        if why is None:
            agree += 1
        elif why.startswith("refused"):
            refused += 1
            if "-v" in sys.argv:
                print(why)
        else:
            print(f"MISMATCH {why}: {[c['stage'].spec.text for c in chain]}")
    print(
        f"{agree} of {count} cases agree with torch.autograd ({refused} refused as invalid layers)"
    )
    agree = refused = 0
    for n in range(count):
        case = grouped_case(rng, 1 + n % 3)
        why = check_grouped(case, rng)
        if why is None:
            agree += 1
        elif why.startswith("refused"):
            refused += 1
            if "-v" in sys.argv:
                print(why)
        else:
            print(f"MISMATCH {why}: grouped {case['stage'].spec.text}")
    print(
        f"{agree} of {count} grouped cases (ranks 1, 2, 3) agree with nn.ConvNd(groups=G) "
        f"and its autograd ({refused} refused as invalid layers)"
    )


if __name__ == "__main__":
    main()
