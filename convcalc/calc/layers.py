"""Layer descriptions: frozen dataclasses (see `_Description`), one per kind of layer.

A layer holds what the user wrote; per-axis values are tuples of one entry (the
same on every axis) or one per spatial axis. `convcalc.calc.evaluation` computes shapes,
parameters, MACs and receptive fields from them.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, fields
from typing import NamedTuple

from convcalc.calc.choices import PoolKind
from convcalc.calc.geometry import Padding

Dims = tuple[int, ...]
"""A per-axis value: one entry for every axis, or one per spatial axis."""

Pads = tuple[Padding, ...]
"""Per-axis padding: one entry for every axis, or one per spatial axis."""


class _Description:
    """Value semantics (repr, ==, hash, immutability) shared by the layer dataclasses.

    The classes below are dataclasses whose repr, eq, hash and frozenness come
    from here rather than being generated one class at a time: each generated
    method costs `convcalc shape` start-up time (frozen=True alone adds 0.3 ms a
    class, 4 ms in all). As with frozen=True, a field is set once, by __init__,
    and assigning or deleting one afterwards raises FrozenInstanceError.
    """

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        if name in vars(self) or name not in self.__dataclass_fields__:  # type: ignore[attr-defined]
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={value!r}" for name, value in self._items())
        return f"{type(self).__name__}({values})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Description)
            and type(self) is type(other)
            and (self._values() == other._values())
        )

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def _values(self) -> tuple[object, ...]:
        return tuple(value for _, value in self._items())

    def _items(self) -> list[tuple[str, object]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]  # type: ignore[arg-type]


class Shape(NamedTuple):
    """A tensor shape, channels last: spatial axes (HxW, DxHxW, n) then channels.

    ``channels`` is None when the user gave no channel count (a one-channel map
    written ``32x32``); a flat vector has no spatial axes.
    """

    spatial: Dims
    channels: int | None = None

    @property
    def c(self) -> int:
        """The channel count, 1 when none was given."""
        return 1 if self.channels is None else self.channels

    @property
    def volume(self) -> int:
        """The number of values: product of every axis."""
        total = self.c
        for n in self.spatial:
            total *= n
        return total

    @property
    def flat(self) -> bool:
        """True for a vector (the output of flatten and fully connected layers)."""
        return not self.spatial

    def as_list(self) -> list[int]:
        """The shape as a list of integers, HxWxC order: ``[28, 28, 6]`` or ``[120]``."""
        return [*self.spatial, *(() if self.channels is None else (self.channels,))]

    def __str__(self) -> str:
        return "x".join(str(n) for n in self.as_list())


@dataclass(repr=False, eq=False)
class Conv(_Description):
    """Convolution of rank 1, 2 or 3: ``out`` filters of ``kernel``.

    ``out`` None keeps the input's channel count; ``kernel`` None is allowed only
    when ``source`` names the kernels' values, one text per filter (``conv:k=sobel-x``
    in apply; ``conv:k=A,k=B,g=2`` for two filters).
    """

    out: int | None
    kernel: Dims | None
    stride: Dims = (1,)
    padding: Pads = (0,)
    dilation: Dims = (1,)
    groups: int = 1
    bias: bool = True
    rank: int = 2
    source: tuple[str, ...] | None = None


@dataclass(repr=False, eq=False)
class DepthwiseConv(_Description):
    """Depthwise convolution: each input channel filtered by ``multiplier`` kernels."""

    kernel: Dims
    multiplier: int = 1
    stride: Dims = (1,)
    padding: Pads = (0,)
    dilation: Dims = (1,)
    bias: bool = True
    rank: int = 2


@dataclass(repr=False, eq=False)
class Deconv(_Description):
    """Transposed convolution (``out`` filters of ``kernel``), with output_padding.

    As with `Conv`, ``kernel`` may be None when ``source`` names the kernels' values.
    """

    out: int | None
    kernel: Dims | None
    stride: Dims = (1,)
    padding: Pads = (0,)
    dilation: Dims = (1,)
    output_padding: Dims = (0,)
    groups: int = 1
    bias: bool = True
    rank: int = 2
    source: tuple[str, ...] | None = None


@dataclass(repr=False, eq=False)
class Pool(_Description):
    """Max, average or L2 pooling; stride None means the kernel size.

    ``rank`` None takes the network's rank (``maxpool:2``); 1 or 3 is written
    ``maxpool1d:2``, ``maxpool3d:2`` and fixes it.
    """

    kind: PoolKind
    kernel: Dims
    stride: Dims | None = None
    padding: Pads = (0,)
    dilation: Dims = (1,)
    ceil: bool = False
    rank: int | None = None


@dataclass(repr=False, eq=False)
class GlobalPool(_Description):
    """Global average or max pooling: every spatial axis to 1."""

    kind: PoolKind


@dataclass(repr=False, eq=False)
class AdaptivePool(_Description):
    """Adaptive average pooling (PyTorch's AdaptiveAvgPool2d): any input to ``size``."""

    size: Dims


@dataclass(repr=False, eq=False)
class Dense(_Description):
    """Fully connected layer of ``units`` outputs; flattens its input first."""

    units: int
    bias: bool = True


@dataclass(repr=False, eq=False)
class Flatten(_Description):
    """Flatten to a vector."""


@dataclass(repr=False, eq=False)
class Pointwise(_Description):
    """A layer that keeps the shape and holds no parameters (relu, dropout, lrn …)."""

    name: str


@dataclass(repr=False, eq=False)
class BatchNorm(_Description):
    """Batch normalisation: 2·C trainable values (γ, β) and 2·C running statistics."""


@dataclass(repr=False, eq=False)
class ResBlock(_Description):
    """A ResNet block: ``basic`` (two 3x3) or ``bottleneck`` (1x1, 3x3, 1x1 to 4·width).

    Convolutions have no bias and are each followed by batch normalisation; the
    shortcut is a 1x1 projection (with batch normalisation) when the shape changes.
    """

    kind: str
    width: int
    stride: int = 1


@dataclass(repr=False, eq=False)
class InvertedResidual(_Description):
    """MobileNetV2's inverted residual: 1x1 expand (×t), 3x3 depthwise, 1x1 project."""

    out: int
    expand: int = 6
    stride: int = 1


@dataclass(repr=False, eq=False)
class Upsample(_Description):
    """Upsampling by ``scale`` per axis (nearest or bilinear): no parameters, no MACs."""

    scale: Dims
    mode: str = "nearest"


@dataclass(repr=False, eq=False)
class Pad(_Description):
    """Explicit zero padding of the spatial axes (Keras's ZeroPadding2D)."""

    padding: Dims


@dataclass(repr=False, eq=False)
class LayerNorm(_Description):
    """Layer normalisation over the channels: 2·C parameters (γ, β), no buffers."""


@dataclass(repr=False, eq=False)
class Scale(_Description):
    """A learnable per-channel scale (ConvNeXt's layer scale): C parameters."""


@dataclass(repr=False, eq=False)
class Group(_Description):
    """Parallel branches from one tensor, then merged: ``( A | B ) concat``.

    ``branches`` are layer lists (an empty one is the identity); ``merge`` is
    ``concat`` (along channels), ``add`` (equal shapes) or ``mul`` (a 1x1xC gate
    broadcast over HxWxC, or equal shapes).
    """

    branches: tuple[tuple[Spec, ...], ...]
    merge: str


@dataclass(repr=False, eq=False)
class Merge(_Description):
    """The current tensor merged with named ones: ``concat:a``, ``add:a``, ``mul:a``.

    ``crop`` centre-crops each named tensor to the current size first (U-Net).
    """

    kind: str
    names: tuple[str, ...]
    crop: bool = False


@dataclass(repr=False, eq=False)
class Mark(_Description):
    """``@name``: names the current tensor, for a later `Merge`."""

    name: str


Layer = (
    Conv
    | DepthwiseConv
    | Deconv
    | Pool
    | GlobalPool
    | AdaptivePool
    | Dense
    | Flatten
    | Pointwise
    | BatchNorm
    | ResBlock
    | InvertedResidual
    | Upsample
    | Pad
    | LayerNorm
    | Scale
    | Group
    | Merge
    | Mark
)

RANKED = (Conv, DepthwiseConv, Deconv)
"""Layers whose rank (1-D, 2-D, 3-D) fixes how an input shape is read."""


def network_rank(layers: list[Layer]) -> int | None:
    """The number of spatial axes a stack works on: that of its first ranked layer
    (a ResNet or MobileNet block is 2-D), or None when no layer fixes it."""
    for layer in layers:
        if isinstance(layer, RANKED):
            return layer.rank
        if isinstance(layer, Pool) and layer.rank is not None:
            return layer.rank
        if isinstance(layer, ResBlock | InvertedResidual):
            return 2
        if isinstance(layer, Group):
            inside = [spec.layer for branch in layer.branches for spec in branch]
            rank = network_rank(inside)
            if rank is not None:
                return rank
    return None


@dataclass(repr=False, eq=False)
class Spec(_Description):
    """A layer as written (``conv:6,5``), what it means, and where it was written."""

    text: str
    layer: Layer
    where: str = ""
