"""`convcalc shape ... --emit pytorch`: the network as one PyTorch module (source text).

The module imports torch, defines the helper classes the network needs (the merges of
branches, layer norm over channels, layer scale), a ``Net(nn.Module)`` taking NCHW
input and ``build()``; run as a script, it builds the network, runs a zero input and
prints the trainable parameters and the output shape beside convcalc's.

Branches become modules (``Concat``, ``Add`` or ``Mul`` of their branches), so that a
network without ``@NAME`` is one ``nn.Sequential``; named tensors (a U-Net's skips) make
a ``forward`` with the concatenations, sums and products written out.

Padding is written as the result computed it: equal before and after, the layer's own
``padding``; unequal (TensorFlow's SAME with a stride), an ``nn.ZeroPad2d`` before the
layer (``nn.ConstantPad2d`` of -inf before a max pool, where a zero could win), never a
symmetric one in its place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from convcalc.calc.choices import Convention, PoolKind, Rounding
from convcalc.calc.geometry import Axis, pool_axis
from convcalc.calc.layers import (
    AdaptivePool,
    BatchNorm,
    Conv,
    Deconv,
    Dense,
    DepthwiseConv,
    Flatten,
    GlobalPool,
    Group,
    InvertedResidual,
    LayerNorm,
    Mark,
    Merge,
    Pad,
    Pointwise,
    Pool,
    ResBlock,
    Scale,
    Shape,
    Spec,
    Upsample,
)
from convcalc.calc.network import NetworkResult
from convcalc.errors import ConvcalcError
from convcalc.present.emit_common import (
    DROPOUT_RATE,
    LAYER_NORM_EPS,
    LRELU_SLOPE,
    Node,
    block_note,
    block_parts,
    branch_nodes,
    crop_pairs,
    dims,
    docstring,
    network_nodes,
    overhang,
    padding_text,
    pads,
    refusal,
    uses_names,
    variable_names,
)
from convcalc.present.emit_helpers import PYTORCH_HELPERS

FRAMEWORK = "PyTorch"

RESERVED = {"self", "torch", "nn", "Net", "build", "model", "out", "params", "Branches"}
"""Names the module uses: a tensor named so (``@out``) gets a trailing ``_``."""


def emit_pytorch(
    specs: Sequence[Spec],
    result: NetworkResult,
    input_shape: Shape,
    *,
    convention: Convention = Convention.TORCH,
    command: str = "",
) -> str:
    """The network as the source text of one self-contained PyTorch module.

    Parameters
    ----------
    specs, result
        The layers as parsed and as `convcalc.calc.evaluation.evaluate` computed them on
        ``input_shape`` (HxWxC), with ``convention``.
    command
        The convcalc command line that made it, quoted in the module's docstring.

    Returns
    -------
    str
        Python source: ``build()`` returns an ``nn.Module`` taking NCHW input with the
        trainable parameters and output shape of ``result``.

    Raises
    ------
    ConvcalcError
        A layer PyTorch cannot express exactly, named (e.g. an average pool with
        TensorFlow's unequal SAME padding, which TensorFlow leaves out of the count).
    """
    writer = _Writer(convention, variable_names(specs, RESERVED | set(PYTORCH_HELPERS)))
    statements, out = writer.flow(network_nodes(specs, result), "x", "x")
    return writer.module(statements, out, input_shape, result, command)


# -- the module ------------------------------------------------------------


class _Item(NamedTuple):
    """A module as written: a call (``nn.ReLU()``), or a container's name and its items."""

    head: str
    comment: str = ""
    children: tuple[_Item, ...] | None = None


class _Writer:
    """One emission: the parts of ``Net``, the helpers and notes they need, the names."""

    def __init__(self, convention: Convention, names: dict[str, str]) -> None:
        self.convention = convention
        self.names = names
        self.helpers: dict[str, None] = {}
        self.notes: dict[str, None] = {}
        self.parts: list[tuple[str, _Item]] = []
        self.named: dict[str, Shape] = {}

    def flow(self, nodes: Sequence[Node], src: str, dst: str) -> tuple[list[str], str]:
        """``forward``'s statements for ``nodes`` from the tensor ``src``, writing ``dst``:
        runs of layers become parts (``self.part1``), names and merges statements."""
        statements: list[str] = []
        run: list[_Item] = []
        current = src

        def flush() -> None:
            nonlocal current
            if run:
                name = f"part{len(self.parts) + 1}"
                self.parts.append((name, _sequence(run)))
                statements.append(f"{dst} = self.{name}({current})")
                current = dst
                run.clear()

        for node in nodes:
            if isinstance(node.layer, Mark | Merge) or (
                isinstance(node.layer, Group) and uses_names(node.layer)
            ):
                flush()
                lines, current = self._statements(node, current, dst)
                statements += lines
            else:
                run.extend(self.items([node]))
        flush()
        return statements, current

    def items(self, nodes: Sequence[Node]) -> list[_Item]:
        """The modules of layers that need no statements of their own."""
        return [item for node in nodes for item in _MODULES[type(node.layer)](self, node)]

    def module(
        self, statements: list[str], out: str, shape: Shape, result: NetworkResult, command: str
    ) -> str:
        single = len(self.parts) == 1 and statements == [f"x = self.{self.parts[0][0]}(x)"]
        if single:  # the whole network is one run: nn.Sequential even for one layer
            item = self.parts[0][1]
            sequential = (
                item if item.head == "nn.Sequential" else _Item("nn.Sequential", "", (item,))
            )
        parts = [("layers", sequential)] if single else self.parts
        init = [line for name, item in parts for line in _render(item, 8, f"self.{name} = ", "")]
        forward = ["return self.layers(x)"] if single else [*statements, f"return {out}"]
        params = result.total_params
        expected = _nchw(result.output, "1")
        lines = [
            docstring(FRAMEWORK, command, _nchw(shape, "N"), _nchw(result.output, "N"), params,
                      list(self.notes)),
            "",
            "import torch",
            "import torch.nn as nn",
            *self._helper_lines(),
            "",
            "",
            "class Net(nn.Module):",
            f'    """The network: {_LAYOUTS.get(len(shape.spatial), "channels-first")} input '
            f'{_nchw(shape, "N")} -> {_nchw(result.output, "N")}."""',
            "",
            "    def __init__(self) -> None:",
            "        super().__init__()",
            *init,
            "",
            "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
            *(f"        {line}" for line in forward),
            "",
            "",
            "def build() -> nn.Module:",
            f'    """The network, {params:,} trainable parameters."""',
            "    return Net()",
            "",
            "",
            'if __name__ == "__main__":',
            "    model = build().eval()",
            "    with torch.no_grad():",
            f"        out = model(torch.zeros{_nchw(shape, '1')})",
            "    params = sum(p.numel() for p in model.parameters() if p.requires_grad)",
            f'    print(f"trainable parameters: {{params:,}} (convcalc: {params:,})")',
            f'    print(f"output shape: {{tuple(out.shape)}} (convcalc: {expected})")',
        ]  # fmt: skip
        return "\n".join(lines) + "\n"

    def _helper_lines(self) -> list[str]:
        """The helper classes used, each after two blank lines, in a fixed order."""
        used = [source for name, source in PYTORCH_HELPERS.items() if name in self.helpers]
        return [line for source in used for line in ["", "", *source.splitlines()]]

    def helper(self, name: str) -> str:
        """Use a helper class of the module (and the ones it builds on); its name."""
        if name in ("Concat", "Add", "Mul"):
            self.helpers.setdefault("Branches")
        self.helpers.setdefault(name)
        return name

    def _statements(self, node: Node, current: str, dst: str) -> tuple[list[str], str]:
        """A name, a merge with named tensors, or a group holding either, written out."""
        layer = node.layer
        if isinstance(layer, Mark):
            self.named[layer.name] = node.input
            return [f"{self.names[layer.name]} = {current}"], current
        if isinstance(layer, Merge):
            others = [self._named(name, node, layer.crop) for name in layer.names]
            return [f"{dst} = {_merged(layer.kind, [current, *others])}  # {node.comment}"], dst
        assert isinstance(layer, Group)
        lines = [f"# {node.text}"]
        outs = []
        for i, branch in enumerate(branch_nodes(node), start=1):
            branch_lines, branch_out = self.flow(branch, current, f"{dst}_{i}")
            lines += branch_lines
            outs.append(branch_out)
        return [*lines, f"{dst} = {_merged(layer.merge, outs)}  # {node.comment}"], dst

    def _named(self, name: str, node: Node, crop: bool) -> str:
        variable = self.names[name]
        if not crop:
            return variable
        cuts = crop_pairs(self.named[name], node.input)
        if not any(lo or hi for lo, hi in cuts):
            return variable
        ranges = [f"{lo}:{lo + n}" for (lo, _), n in zip(cuts, node.input.spatial, strict=True)]
        return f"{variable}[:, :, {', '.join(ranges)}]"


def _merged(kind: str, tensors: list[str]) -> str:
    if len(tensors) == 1:
        return tensors[0]
    if kind == "concat":
        return f"torch.cat([{', '.join(tensors)}], dim=1)"
    return (" + " if kind == "add" else " * ").join(tensors)


def _sequence(items: Sequence[_Item], comment: str = "") -> _Item:
    if not items:
        return _Item("nn.Identity()", comment)
    if len(items) == 1 and not comment:
        return items[0]
    return _Item("nn.Sequential", comment, tuple(items))


def _render(item: _Item, indent: int, prefix: str = "", end: str = ",") -> list[str]:
    pad = " " * indent
    comment = f"  # {item.comment}" if item.comment else ""
    if item.children is None:
        return [f"{pad}{prefix}{item.head}{end}{comment}"]
    inner = [line for child in item.children for line in _render(child, indent + 4)]
    return [f"{pad}{prefix}{item.head}({comment}", *inner, f"{pad}){end}"]


_LAYOUTS = {1: "NCL", 2: "NCHW", 3: "NCDHW"}


def _nchw(shape: Shape, batch: str) -> str:
    return "(" + ", ".join([batch, str(shape.c), *map(str, shape.spatial)]) + ")"


# -- one layer -------------------------------------------------------------


def _refuse(node: Node, why: str, valid: str) -> ConvcalcError:
    return refusal(node, FRAMEWORK, why, valid)


def _call(name: str, args: Sequence[str]) -> str:
    return f"{name}({', '.join(args)})"


def _keyword(name: str, values: Sequence[int], default: int) -> list[str]:
    return [f"{name}={dims(values)}"] if any(v != default for v in values) else []


def _pad_item(node: Node, pairs: Sequence[tuple[int, int]], *, fill: str = "") -> _Item:
    """``nn.ZeroPad2d((left, right, top, bottom))`` (the last axis first, as F.pad); with
    ``fill``, ``nn.ConstantPad2d(…, fill)``."""
    flat = ", ".join(str(v) for lo, hi in reversed(pairs) for v in (lo, hi))
    padding = f"({flat})"
    kind = "Constant" if fill else "Zero"
    args = [padding, fill] if fill else [padding]
    what = "unequal padding" if any(lo != hi for lo, hi in pairs) else "padding"
    comment = f"{what} of {node.text}: {padding_text(pairs)}"
    return _Item(_call(f"nn.{kind}Pad{len(pairs)}d", args), comment)


def _conv(w: _Writer, node: Node) -> list[_Item]:
    layer = node.layer
    assert isinstance(layer, Conv | DepthwiseConv)
    axes, pairs = node.axes, pads(node)
    c_in = node.input.c
    groups = c_in if isinstance(layer, DepthwiseConv) else layer.groups
    args = [str(c_in), str(node.output.c), f"kernel_size={dims([ax.kernel for ax in axes])}"]
    args += _keyword("stride", [ax.stride for ax in axes], 1)
    items = []
    if all(lo == hi for lo, hi in pairs):
        args += _keyword("padding", [lo for lo, _ in pairs], 0)
    else:
        items.append(_pad_item(node, pairs))
    args += _keyword("dilation", [ax.dilation for ax in axes], 1)
    args += [f"groups={groups}"] if groups != 1 else []
    args += [] if layer.bias else ["bias=False"]
    return [*items, _Item(_call(f"nn.Conv{node.rank}d", args), node.comment)]


def _deconv(w: _Writer, node: Node) -> list[_Item]:
    """ConvTranspose crops ``padding`` off the start of the full output, ``padding -
    output_padding`` off its end: the result's pad_lo is the padding, output_padding
    what makes the size; where more must come off the end (TensorFlow's SAME, the odd
    one after), a negative padding crops it."""
    layer = node.layer
    assert isinstance(layer, Deconv)
    axes = node.axes
    extra = [ax.size - ((ax.n - 1) * ax.stride + ax.span) + 2 * ax.pad_lo for ax in axes]
    crop = [max(0, -e) for e in extra]
    extra = [max(0, e) for e in extra]
    for ax, e in zip(axes, extra, strict=True):
        if e >= max(ax.stride, ax.dilation):
            raise _refuse(
                node,
                f"it needs output_padding {e}, not below the stride "
                f"{ax.stride} or the dilation {ax.dilation}",
                "less padding after",
            )
    args = [
        str(node.input.c),
        str(node.output.c),
        f"kernel_size={dims([ax.kernel for ax in axes])}",
    ]
    args += _keyword("stride", [ax.stride for ax in axes], 1)
    args += _keyword("padding", [ax.pad_lo for ax in axes], 0)
    args += _keyword("output_padding", extra, 0)
    args += [f"groups={layer.groups}"] if layer.groups != 1 else []
    args += [] if layer.bias else ["bias=False"]
    args += _keyword("dilation", [ax.dilation for ax in axes], 1)
    call = _call(f"nn.ConvTranspose{node.rank}d", args)
    if not any(crop):
        return [_Item(call, node.comment)]
    flat = ", ".join(str(v) for c in reversed(crop) for v in (0, -c))
    cut = padding_text([(0, c) for c in crop])
    return [
        _Item(call, f"{node.text}: cropped next"),
        _Item(
            f"nn.ZeroPad{node.rank}d(({flat}))", f"{node.comment} (negative padding crops {cut})"
        ),
    ]


_POOLS = {PoolKind.MAX: "MaxPool", PoolKind.AVG: "AvgPool", PoolKind.L2: "LPPool"}


def _pool(w: _Writer, node: Node) -> list[_Item]:
    """The pool's own padding and ceil_mode where they give the result's windows; else
    the padding before it: -inf before a max pool (the rounding up as more of it), zeros
    before an average or L2 pool (counted, as PyTorch and Caffe count them)."""
    layer = node.layer
    assert isinstance(layer, Pool)
    axes, pairs = node.axes, pads(node)
    if layer.kind != PoolKind.MAX and any(ax.dilation > 1 for ax in axes):
        raise _refuse(
            node,
            f"nn.{_POOLS[layer.kind]}2d has no dilation",
            "dilation 1, or a max pool",
        )
    ceil = any(ax.rounding == Rounding.CEIL for ax in axes)
    exclude = layer.kind == PoolKind.AVG and w.convention == Convention.TF
    kernel = [ax.kernel for ax in axes]
    args = ["2"] if layer.kind == PoolKind.L2 else []
    args += [f"kernel_size={dims(kernel)}"]
    if [ax.stride for ax in axes] != kernel:
        args += [f"stride={dims([ax.stride for ax in axes])}"]
    args += _keyword("dilation", [ax.dilation for ax in axes], 1)
    name = f"nn.{_POOLS[layer.kind]}{node.rank}d"
    if layer.kind != PoolKind.L2 and _native_pool(node, ceil):
        args += _keyword("padding", [lo for lo, _ in pairs], 0)
        args += ["ceil_mode=True"] if ceil else []
        args += ["count_include_pad=False"] if exclude and any(lo for lo, _ in pairs) else []
        return [_Item(_call(name, args), node.comment)]
    if exclude:
        raise _refuse(
            node,
            "TensorFlow's average leaves the padding "
            f"({padding_text(pairs)}) out of the count, and nn.AvgPool2d leaves out only "
            "equal padding of at most half the kernel",
            "--convention torch (padding counted as zeros), or equal padding",
        )
    if layer.kind == PoolKind.MAX:  # -inf never wins a max
        pairs = [(lo, hi + overhang(ax)) for (lo, hi), ax in zip(pairs, axes, strict=True)]
        ceil = False
    elif layer.kind == PoolKind.L2 and any(overhang(ax) for ax in axes):
        raise _refuse(
            node,
            "its last window runs past the input (ceil), and nn.LPPool2d "
            "scales a cut window's mean by the whole kernel",
            "no ceil, or sizes the windows tile",
        )
    elif layer.kind == PoolKind.L2:
        ceil = False
    sizes = [_pooled(ax, lo + hi, ceil) for ax, (lo, hi) in zip(axes, pairs, strict=True)]
    if sizes != [ax.size for ax in axes]:
        raise _refuse(
            node,
            f"the padded input pools to {dims(sizes)} in PyTorch",
            "padding of at most half the kernel",
        )
    fill = 'float("-inf")' if layer.kind == PoolKind.MAX else ""
    items = [_pad_item(node, pairs, fill=fill)] if any(map(any, pairs)) else []
    args += ["ceil_mode=True"] if ceil else []
    return [*items, _Item(_call(name, args), node.comment)]


def _pooled(ax: Axis, padding: int, ceil: bool) -> int:
    """The size PyTorch pools an axis padded beforehand by ``padding`` in all to."""
    return pool_axis(
        ax.n + padding, ax.kernel, stride=ax.stride, dilation=ax.dilation, ceil=ceil
    ).size


def _native_pool(node: Node, ceil: bool) -> bool:
    """True when the pool's own ``padding`` (equal, at most half the kernel) and
    ``ceil_mode`` give the result's windows."""
    return all(
        ax.pad_lo == ax.pad_hi
        and ax.pad_lo <= ax.kernel // 2
        and pool_axis(
            ax.n, ax.kernel, stride=ax.stride, padding=ax.pad_lo, dilation=ax.dilation, ceil=ceil
        ).size
        == ax.size
        for ax in node.axes
    )


def _dense(w: _Writer, node: Node) -> list[_Item]:
    layer = node.layer
    assert isinstance(layer, Dense)
    args = [str(node.input.volume), str(layer.units)] + ([] if layer.bias else ["bias=False"])
    flatten = [] if node.input.flat else [_Item("nn.Flatten()", f"{node.text} flattens first")]
    return [*flatten, _Item(_call("nn.Linear", args), node.comment)]


def _pointwise(w: _Writer, node: Node) -> list[_Item]:
    layer = node.layer
    assert isinstance(layer, Pointwise)
    if layer.name == "dropout":
        w.notes.setdefault(f"dropout: rate {DROPOUT_RATE}, PyTorch's default (a spec gives none)")
    if layer.name == "lrn":
        w.notes.setdefault("lrn: nn.LocalResponseNorm(5), PyTorch's alpha, beta and k")
    return [_Item(_ACTIVATIONS[layer.name], node.comment)]


_ACTIVATIONS = {
    "relu": "nn.ReLU()", "lrelu": f"nn.LeakyReLU({LRELU_SLOPE})", "relu6": "nn.ReLU6()",
    "sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()", "softmax": "nn.Softmax(dim=1)",
    "dropout": f"nn.Dropout({DROPOUT_RATE})", "lrn": "nn.LocalResponseNorm(5)",
    "gelu": "nn.GELU()", "silu": "nn.SiLU()", "hardswish": "nn.Hardswish()",
    "hsigmoid": "nn.Hardsigmoid()", "identity": "nn.Identity()",
}  # fmt: skip


def _norm(w: _Writer, node: Node) -> list[_Item]:
    c = node.input.c
    if isinstance(node.layer, BatchNorm):
        return [_Item(f"nn.BatchNorm{max(node.rank, 1)}d({c})", node.comment)]
    w.notes.setdefault(f"ln: epsilon {LAYER_NORM_EPS}, as torchvision's ConvNeXt")
    if node.input.flat:
        return [_Item(f"nn.LayerNorm({c}, eps={LAYER_NORM_EPS})", node.comment)]
    name = w.helper(f"LayerNorm{node.rank}d")
    return [_Item(f"{name}({c}, eps={LAYER_NORM_EPS})", node.comment)]


def _scale(w: _Writer, node: Node) -> list[_Item]:
    return [_Item(f"{w.helper('LayerScale')}({node.input.c})", node.comment)]


def _upsample(w: _Writer, node: Node) -> list[_Item]:
    layer = node.layer
    assert isinstance(layer, Upsample)
    scale = [out // n for out, n in zip(node.output.spatial, node.input.spatial, strict=True)]
    args = [f"scale_factor={dims(scale)}"]
    if layer.mode == "bilinear":
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[node.rank]
        args += [f'mode="{mode}"', "align_corners=False"]
    return [_Item(_call("nn.Upsample", args), node.comment)]


def _pad(w: _Writer, node: Node) -> list[_Item]:
    pairs = [
        ((out - n) // 2, (out - n) // 2)
        for out, n in zip(node.output.spatial, node.input.spatial, strict=True)
    ]
    item = _pad_item(node, pairs)
    return [item._replace(comment=node.comment)]


def _global_pool(w: _Writer, node: Node) -> list[_Item]:
    layer = node.layer
    assert isinstance(layer, GlobalPool)
    kind = "Max" if layer.kind == PoolKind.MAX else "Avg"
    return [_Item(f"nn.Adaptive{kind}Pool{node.rank}d(1)", node.comment)]


def _adaptive_pool(w: _Writer, node: Node) -> list[_Item]:
    size = dims(node.output.spatial)
    return [_Item(f"nn.AdaptiveAvgPool{node.rank}d({size})", node.comment)]


def _group(w: _Writer, node: Node) -> list[_Item]:
    layer = node.layer
    assert isinstance(layer, Group)
    branches = tuple(_sequence(w.items(branch)) for branch in branch_nodes(node))
    return [_Item(w.helper(layer.merge.capitalize()), node.comment, branches)]


def _block(w: _Writer, node: Node) -> list[_Item]:
    block = block_parts(node)
    w.notes.setdefault(block_note(node))
    main = w.items(block.main)
    if block.shortcut is None:
        return [_sequence(main, node.comment)]
    branches = (_sequence(w.items(block.shortcut)), _sequence(main))
    return [_Item(w.helper("Add"), node.comment, branches), *w.items(block.after)]


def _flatten(w: _Writer, node: Node) -> list[_Item]:
    return [_Item("nn.Flatten()", node.comment)]


_MODULES: dict[type, Callable[[_Writer, Node], list[_Item]]] = {
    Conv: _conv,
    DepthwiseConv: _conv,
    Deconv: _deconv,
    Pool: _pool,
    GlobalPool: _global_pool,
    AdaptivePool: _adaptive_pool,
    Dense: _dense,
    Flatten: _flatten,
    Pointwise: _pointwise,
    BatchNorm: _norm,
    LayerNorm: _norm,
    Scale: _scale,
    Upsample: _upsample,
    Pad: _pad,
    Group: _group,
    ResBlock: _block,
    InvertedResidual: _block,
}
