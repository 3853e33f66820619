"""The fixed choices of convcalc's options, as string enums."""

from __future__ import annotations

import sys
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, Enum):
        """An Enum whose members are also their string values."""

        def __str__(self) -> str:
            return str(self.value)


class Convention(StrEnum):
    """Whose rules decide where frameworks differ (pooling rounding, SAME)."""

    TORCH = "torch"
    TF = "tf"
    CAFFE = "caffe"


class PoolKind(StrEnum):
    """What a pooling window computes."""

    MAX = "max"
    AVG = "avg"
    L2 = "l2"


class PadMode(StrEnum):
    """What values fill the padding around an input."""

    ZERO = "zero"
    REFLECT = "reflect"
    REPLICATE = "replicate"
    WRAP = "wrap"


class Method(StrEnum):
    """The algorithm that computes a convolution."""

    AUTO = "auto"
    DIRECT = "direct"
    IM2COL = "im2col"
    FFT = "fft"
    WINOGRAD = "winograd"


class Activation(StrEnum):
    """A pointwise function applied after a convolution's sum."""

    NONE = "none"
    RELU = "relu"
    LRELU = "lrelu"
    SIGMOID = "sigmoid"
    TANH = "tanh"


class Scale(StrEnum):
    """How result values are mapped to 0-255 when written as an image."""

    AUTO = "auto"
    CLIP = "clip"
    ABS = "abs"
    MINMAX = "minmax"


class ChannelMode(StrEnum):
    """What a 2-D kernel does on a multi-channel input."""

    EACH = "each"
    SUM = "sum"


class Optimizer(StrEnum):
    """How a training step updates the weights: what state it keeps per weight."""

    SGD = "sgd"
    MOMENTUM = "momentum"
    ADAM = "adam"
    ADAMW = "adamw"


class DType(StrEnum):
    """The element type of weights, gradients, optimizer state and activations."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"


class Format(StrEnum):
    """How a command prints its result: a rich table, one JSON document, or a table as
    CSV, GitHub Markdown or LaTeX (booktabs)."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"
    LATEX = "latex"


class PadRule(StrEnum):
    """Padding given by name rather than by count."""

    SAME = "same"
    VALID = "valid"
    FULL = "full"


class Rounding(StrEnum):
    """How an axis's output size was rounded."""

    FLOOR = "floor"
    CEIL = "ceil"
    SAME = "same"
    TRANSPOSED = "transposed"


class FileFormat(StrEnum):
    """What an output file holds, decided by its extension."""

    PNG = "png"
    JPEG = "jpeg"
    TIFF = "tiff"
    WEBP = "webp"
    BMP = "bmp"
    NPY = "npy"
    TEXT = "text"


class TraceKind(StrEnum):
    """What the layer traced by ``apply --steps`` computes."""

    CONV = "conv"
    DECONV = "deconv"
    POOL = "pool"
    GLOBAL_POOL = "global_pool"


class AnimKind(StrEnum):
    """What is animated: a convolution, max or average pooling, a transposed convolution."""

    CONV = "conv"
    POOL_MAX = "pool-max"
    POOL_AVG = "pool-avg"
    TRANSPOSED = "transposed"


__all__ = [
    "Activation",
    "AnimKind",
    "ChannelMode",
    "Convention",
    "DType",
    "FileFormat",
    "Format",
    "Method",
    "Optimizer",
    "PadMode",
    "PadRule",
    "PoolKind",
    "Rounding",
    "Scale",
    "StrEnum",
    "TraceKind",
]
