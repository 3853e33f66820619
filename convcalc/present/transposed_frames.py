"""The plans of a transposed convolution: each input cell adds its scaled kernel into
the full output (before the padding is cropped), the output accumulating.

One channel and one 2-D kernel: one step per input cell, the kernel scaled by the
cell's value. Several channels, filters or a bias (the layer `convcalc apply` runs,
its filters applied as `convcalc.present.volume_frames.filter_slices` says): one step
per output channel and input position, the input cell in every channel slice the
filter sees, each scaled by its slice of the filter and summed over channels; each
output channel starts at its bias.
"""

from __future__ import annotations

import numpy as np

from convcalc.calc.choices import AnimKind
from convcalc.calc.geometry import Axis
from convcalc.calc.layers import Deconv, Spec
from convcalc.compute import ops, windows
from convcalc.compute.pipeline import Settings, Stage, run
from convcalc.present.frame_parts import (
    MAX_TERMS,
    AnimationRequest,
    Array,
    Cell,
    Plan,
    Step,
    box_dims,
    mosaic,
    note_ignored,
    pair_text,
    slice_left,
    span_text,
    title_text,
    value_text,
    weights_of,
)
from convcalc.present.volume_frames import filter_slices, volume_input


def transposed_plan(request: AnimationRequest, x: Array, notes: list[str]) -> Plan:
    """One channel, one 2-D kernel: each input cell adds its scaled kernel to the output."""
    kernel = weights_of(request.kernel)
    size, stride = (kernel.shape[0], kernel.shape[1]), request.stride or (1, 1)
    axes = _axes(request, x.shape, size)
    out = ops.conv_transpose(
        x,
        kernel,
        stride=stride,
        padding=request.padding,
        dilation=request.dilation,
        output_padding=request.output_padding,
    )
    uncropped = ops.conv_transpose(x, kernel, stride=stride, dilation=request.dilation)
    full = _full(uncropped, out, axes, (0.0,))[..., 0]
    box = _box(axes)
    note_ignored(request, "a transposed convolution", notes)
    return Plan(
        AnimKind.TRANSPOSED,
        _title(request, size, stride, axes),
        x,
        (0, 0, *x.shape),
        full,
        box,
        kernel,
        stride,
        request.dilation,
        _final(box, full.shape[:2]),
        tuple(notes),
    )


def transposed_volume_plan(request: AnimationRequest, image: Array, notes: list[str]) -> Plan:
    """Several channels, filters or a bias: per output channel, each input position's
    channel values scale the filter's slices, summed, added into the output."""
    x = volume_input(image)
    made = filter_slices(request, x.shape[2])
    stride = request.stride or (1, 1)
    axes = _axes(request, x.shape, made.size)

    def deconv(padding: tuple[int, int] | None) -> Array:
        """What apply computes (``padding`` None: the layer's), or the uncropped output."""
        layer = Deconv(
            out=len(made.kernels),
            kernel=made.size,
            stride=stride,
            padding=request.padding if padding is None else padding,
            dilation=request.dilation,
            output_padding=request.output_padding if padding is None else (0, 0),
        )
        stage = Stage(Spec(text="deconv", layer=layer), made.kernels, request.bias)
        y = run(x, [stage], Settings(channels=request.channels)).output
        return np.asarray(y, dtype=np.float64)

    full = _full(deconv((0, 0)), deconv(None), axes, made.bias)
    box = _box(axes)
    note_ignored(request, "a transposed convolution", notes)
    title = _title(request, made.size, stride, axes)
    title += f" · {len(made.filters)} output channels" if len(made.filters) > 1 else ""
    return Plan(
        AnimKind.TRANSPOSED,
        title,
        mosaic(x),
        (0, 0, *x.shape[:2]),
        mosaic(full),
        box,
        made.filters[0][:, :, 0],
        stride,
        request.dilation,
        _final(box, full.shape[:2], full.shape[2]),
        tuple(notes),
        left_slices=x.shape[2],
        right_slices=full.shape[2],
        filters=made.filters,
        sees=made.sees,
        bias=made.bias,
        names=made.names,
    )


def contribution(p: Plan, k: int) -> tuple[int, Cell, Cell, Array]:
    """What position ``k`` of a transposed plan adds: its output channel, input cell,
    the right grid's cell of the first tap, and the KH x KW values added there (tap
    (i, j) at that cell + (i·dh, j·dw)): the input value times the kernel, or, with
    several channels, the channel values times the filter's slices, summed."""
    h, w = p.left_box[2:]
    o, (r, c) = k // (h * w), divmod(k % (h * w), w)
    (sh, sw) = p.stride
    if not p.sees:
        return 0, (r, c), (r * sh, c * sw), p.left[r, c] * p.kernel
    values = [p.left[r, slice_left(w, ch) + c] for ch in p.sees[o]]
    added = np.einsum("ijs,s->ij", p.filters[o], np.asarray(values, dtype=np.float64))
    width = (p.right.shape[1] - p.right_slices + 1) // p.right_slices
    return o, (r, c), (r * sh, slice_left(width, o) + c * sw), added


def transposed_volume_step(p: Plan, k: int) -> Step:
    """Output channel o, input cell (r, c): the cell in each channel the filter sees,
    the output cells it adds to, and ``+= v0·slice 0 + … = [a b; c d]``."""
    o, (r, c), (top, left), added = contribution(p, k)
    w = p.left_box[3]
    (kh, kw), (dh, dw) = added.shape, p.dilation
    sees = p.sees[o]
    source = tuple((r, slice_left(w, ch) + c) for ch in sees)
    target = tuple((top + i * dh, left + j * dw) for i in range(kh) for j in range(kw))
    values = [float(p.left[cell]) for cell in source]
    at = f"in[{r},{c}]" if len(sees) > 1 else f"in[{r},{c},{sees[0]}]"
    rows = span_text(r * p.stride[0] - p.right_box[0], kh, dh)
    cols = span_text(c * p.stride[1] - p.right_box[1], kw, dw)
    lines = [f"{at} into out[:,:,{o}], rows {rows}, cols {cols} ({p.names[o]})"]
    if r == c == 0 and p.bias[o]:
        lines.append(f"  out[:,:,{o}] starts at its bias {value_text(p.bias[o], 4)}")
    if len(sees) == 1:
        scaled = f"{value_text(values[0], paren=True)}·kernel"
    elif len(sees) <= MAX_TERMS:
        scaled = " + ".join(
            f"{value_text(v, paren=True)}·slice {ch}" for v, ch in zip(values, sees, strict=True)
        )
    else:
        scaled = f"the sum of {len(sees)} scaled slices"
    if added.size <= MAX_TERMS:
        scaled += " = [" + "; ".join(" ".join(value_text(v, 4) for v in row) for row in added) + "]"
    lines.append(f"  += {scaled}")
    weights = tuple(float(v) for v in added.ravel())
    return Step(k, (r, c), source, target, weights, "\n".join(lines), f"{at} into out[:,:,{o}]", o)


# -- helpers -------------------------------------------------------------------------------


def _axes(request: AnimationRequest, shape: tuple[int, ...], size: Cell) -> tuple[Axis, Axis]:
    """The rows' and columns' geometry of the transposed convolution (`compute.windows`)."""
    return windows.transposed_axes(
        shape,
        size,
        stride=request.stride or (1, 1),
        padding=request.padding,
        dilation=request.dilation,
        output_padding=request.output_padding,
    )


def _full(uncropped: Array, out: Array, axes: tuple[Axis, Axis], bias: tuple[float, ...]) -> Array:
    """The full output (Hf x Wf x F) before the padding is cropped: the uncropped sums
    (past their reach, with output padding, the bias alone), the real part ``out``."""
    rows, cols = axes
    shape = (windows.transposed_full_size(rows), windows.transposed_full_size(cols))
    full = np.empty((*shape, out.shape[2]))
    full[...] = np.asarray(bias, dtype=np.float64)
    full[: uncropped.shape[0], : uncropped.shape[1]] = uncropped
    full[rows.pad_lo : rows.pad_lo + rows.size, cols.pad_lo : cols.pad_lo + cols.size] = out
    return full


def _box(axes: tuple[Axis, Axis]) -> tuple[int, int, int, int]:
    rows, cols = axes
    return rows.pad_lo, cols.pad_lo, rows.size, cols.size


def _title(request: AnimationRequest, size: Cell, stride: Cell, axes: tuple[Axis, Axis]) -> str:
    title = title_text("transposed conv", size, stride, request, axes)
    if request.output_padding != (0, 0):
        title += f" · output padding {pair_text(request.output_padding)}"
    return title


def _final(box: tuple[int, int, int, int], full: tuple[int, ...], channels: int = 0) -> str:
    """``the whole output: 4x4x2 (the hatched cells are cropped)``."""
    final = f"the whole output: {box_dims(box)}" + (f"x{channels}" if channels else "")
    return final + (" (the hatched cells are cropped)" if box[2:] != full else "")
