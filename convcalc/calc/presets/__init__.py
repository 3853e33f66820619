"""Named networks (LeNet-5 … ResNet-50) and network files, read into layer specs."""

from __future__ import annotations

import os

from convcalc.calc.grammar import parse_network
from convcalc.calc.layers import Spec
from convcalc.errors import ConvcalcError, RuntimeFailure

PRESETS = ("lenet5", "alexnet", "vgg16", "resnet18", "resnet50", "mobilenetv2")
"""The built-in networks, each a file of layer specs in this folder."""


def load_network(name: str) -> list[Spec]:
    """The layer specs of a preset name or of a network file at that path."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key in PRESETS and not os.path.exists(name):
        return parse_network(_read_text(os.path.join(_NETS, f"{key}.txt")), key)
    if not os.path.exists(name) and (os.sep in name or os.path.splitext(name)[1]):
        raise RuntimeFailure(f"network file '{name}' not found")
    if not os.path.exists(name):
        raise ConvcalcError(
            f"unknown network '{name}'; valid: {', '.join(PRESETS)}, or the path of a file "
            "of layer specs"
        )
    return parse_network(_read_text(name), name)


# Package data, read with plain os.path: importlib.resources costs start-up time.
_NETS = os.path.join(os.path.dirname(os.path.abspath(__file__)))


def _read_text(path: str) -> str:
    if os.path.isdir(path):
        raise RuntimeFailure(f"network file '{path}' is a directory; give a file of layer specs")
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise RuntimeFailure(f"cannot read network file '{path}': {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConvcalcError(f"network file '{path}' is not UTF-8 text") from None
