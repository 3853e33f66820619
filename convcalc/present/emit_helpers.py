"""The helper classes an emitted module defines where its network needs them, as source.

`convcalc.present.emit_pytorch` writes the PyTorch ones (the merges of branches, layer
norm over the channels of a channels-first tensor, layer scale), and
`convcalc.present.emit_keras` the Keras ones (padding with -inf before a max pool,
layer scale): each what the framework has no layer for, kept short enough to read.
"""

from __future__ import annotations

from convcalc.present.emit_common import LAYER_SCALE_INIT

_BRANCHES = '''class Branches(nn.Module):
    """Branches run on one input; `merge` combines their outputs."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merge([branch(x) for branch in self.branches])

    def merge(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError'''

_CONCAT = '''class Concat(Branches):
    """Branches concatenated along the channels (an Inception module, a dense layer)."""

    def merge(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(outputs, dim=1)'''

_ADD = '''class Add(Branches):
    """Branches summed (a residual block: nn.Identity() is the identity shortcut)."""

    def merge(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        total = outputs[0]
        for out in outputs[1:]:
            total = total + out
        return total'''

_MUL = '''class Mul(Branches):
    """Branches multiplied: a 1x1 gate is broadcast over the map (squeeze-and-excitation)."""

    def merge(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        product = outputs[0]
        for out in outputs[1:]:
            product = product * out
        return product'''

_LAYER_NORM = '''class LayerNorm{rank}d(nn.LayerNorm):
    """Layer normalisation over the channels of an NC{axes} tensor (ConvNeXt's LayerNorm2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)'''

_LAYER_SCALE = f'''class LayerScale(nn.Module):
    """A learnable scale per channel (ConvNeXt's layer scale), starting at {LAYER_SCALE_INIT}."""

    def __init__(self, channels: int, init: float = {LAYER_SCALE_INIT}) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(-1, *[1] * (x.dim() - 2))'''

PYTORCH_HELPERS = {
    "Branches": _BRANCHES,
    "Concat": _CONCAT,
    "Add": _ADD,
    "Mul": _MUL,
    **{
        f"LayerNorm{rank}d": _LAYER_NORM.format(rank=rank, axes=axes)
        for rank, axes in ((1, "L"), (2, "HW"), (3, "DHW"))
    },
    "LayerScale": _LAYER_SCALE,
}
"""Each PyTorch helper class's source, by name (Concat, Add and Mul need Branches)."""

_MAX_PADDING = '''class MaxPadding(layers.Layer):
    """Pads the spatial axes with -inf, which never wins a max: the padding and ceil_mode
    of PyTorch's max pooling (layers.ZeroPadding2D pads zeros, which can win)."""

    def __init__(self, padding: tuple[tuple[int, int], ...], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.pads = padding

    def call(self, x):
        return ops.pad(x, ((0, 0), *self.pads, (0, 0)), constant_values=float("-inf"))'''

_KERAS_LAYER_SCALE = f'''class LayerScale(layers.Layer):
    """A learnable scale per channel (ConvNeXt's layer scale), starting at {LAYER_SCALE_INIT}."""

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.gamma = self.add_weight(
            shape=(input_shape[-1],), initializer=keras.initializers.Constant({LAYER_SCALE_INIT})
        )

    def call(self, x):
        return x * self.gamma'''

KERAS_HELPERS = {"MaxPadding": _MAX_PADDING, "LayerScale": _KERAS_LAYER_SCALE}
"""Each Keras helper layer's source, by name (MaxPadding needs ``from keras import ops``)."""
