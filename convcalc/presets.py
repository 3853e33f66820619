"""Named networks (LeNet-5 … ResNet-50) and network files, read into layer specs."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.grammar import parse_network
from convcalc.layers import Spec

PRESETS = ("lenet5", "alexnet", "vgg16", "resnet18", "resnet50", "mobilenetv2")
"""The built-in networks, each a file of layer specs in convcalc/nets/."""


def load_network(name: str) -> list[Spec]:
    """The layer specs of a preset name or of a network file at that path."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    path = Path(name)
    if key in PRESETS and not path.exists():
        text = resources.files("convcalc").joinpath(f"nets/{key}.txt").read_text("utf-8")
        return parse_network(text, key)
    if not path.exists() and (os.sep in name or path.suffix):
        raise RuntimeFailure(f"network file '{name}' not found")
    if not path.exists():
        raise ConvcalcError(
            f"unknown network '{name}'; valid: {', '.join(PRESETS)}, or the path of a file "
            "of layer specs"
        )
    return parse_network(_read_text(path), name)


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise RuntimeFailure(f"network file '{path}' is a directory; give a file of layer specs")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RuntimeFailure(f"cannot read network file '{path}': {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConvcalcError(f"network file '{path}' is not UTF-8 text") from None
