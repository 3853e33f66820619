"""Named networks (LeNet-5 … ResNet-50) and network files, read into layer specs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the presets' names are read at start-up; the rest when one is loaded
    from convcalc.calc.layers import Spec
from convcalc.errors import ConvcalcError, RuntimeFailure

PRESETS = (
    "lenet5", "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50",
    "resnet101", "resnet152", "googlenet", "inception_v3", "densenet121", "squeezenet1_1",
    "mobilenetv2", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny", "unet",
)  # fmt: skip
"""The built-in networks, each a file NAME.txt of layer specs in this folder. A name
may be written as torchvision spells it (``mobilenet_v2``, ``ResNet-50``): case,
``-`` and ``_`` do not matter."""

MAX_NETWORK_BYTES = 2**20
"""The largest network file read (1 MiB: the largest preset is a few kB)."""


def load_network(name: str) -> list[Spec]:
    """The layer specs of a preset name or of a network file at that path.

    Raises
    ------
    RuntimeFailure
        A file that is missing, a directory, or cannot be read.
    ConvcalcError
        An unknown name, a path that is not a regular file (a device, a FIFO), a file
        over :data:`MAX_NETWORK_BYTES`, not UTF-8, or holding a bad spec.
    """
    from convcalc.calc.sequence import parse_network

    preset = _BY_KEY.get(_key(name))
    if preset is not None and not os.path.lexists(name):
        return parse_network(_read_text(os.path.join(_NETS, f"{preset}.txt")), preset)
    if not os.path.lexists(name) and (os.sep in name or os.path.splitext(name)[1]):
        raise RuntimeFailure(f"network file '{name}' not found")
    if not os.path.lexists(name):
        raise ConvcalcError(
            f"unknown network '{name}'; valid: {', '.join(PRESETS)}, or the path of a file "
            "of layer specs"
        )
    return parse_network(_read_text(name), name)


_NETS = os.path.join(os.path.dirname(os.path.abspath(__file__)))


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "")


_BY_KEY = {_key(preset): preset for preset in PRESETS}


def _read_text(path: str) -> str:
    from convcalc.calc.files import read_regular_file

    data = read_regular_file(
        path,
        name=f"network file '{path}'",
        valid="a preset name or a text file of layer specs",
        max_bytes=MAX_NETWORK_BYTES,
        too_large=lambda size: ConvcalcError(
            f"network file '{path}' holds {size:,} bytes; valid: a text file of layer specs "
            f"of at most {MAX_NETWORK_BYTES:,} bytes (1 MiB)"
        ),
    )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConvcalcError(f"network file '{path}' is not UTF-8 text") from None
