"""Networks read from other frameworks' files: ONNX (``.onnx``, needs the ``onnx``
package: ``pip install 'convcalc[onnx]'``) and Keras (``.keras`` zips and the
``model.to_json()`` ``.json``, read with json and zipfile alone)."""

from __future__ import annotations

import os
from typing import NamedTuple

from convcalc.calc.choices import Convention
from convcalc.calc.layers import Shape, Spec
from convcalc.errors import ConvcalcError

FILE_SUFFIXES = (".onnx", ".keras", ".json")
"""The extensions of network files read from other frameworks."""


class ImportedNetwork(NamedTuple):
    """A network read from a file: its layers, its input (HxWxC; None when the file
    leaves it open), and whose rules its padding follows."""

    specs: list[Spec]
    input_shape: Shape | None
    convention: Convention
    notes: tuple[str, ...] = ()
    """What the figures leave out or count otherwise than the file (said on stderr)."""


def is_network_file(name: str) -> bool:
    """True when ``--net`` names a file of another framework (by its extension)."""
    return os.path.splitext(name)[1].lower() in FILE_SUFFIXES


def read_network_file(path: str) -> ImportedNetwork:
    """The network in an ONNX or Keras file. Raises ConvcalcError (exit 2) for an
    operator or layer convcalc cannot size, naming it and its node."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".onnx":
        from convcalc.io.onnx_reader import read_onnx

        return read_onnx(path)
    if suffix in (".keras", ".json"):
        from convcalc.io.keras_reader import read_keras

        return read_keras(path)
    raise ConvcalcError(f"'{path}' is not an ONNX or Keras file; valid: {', '.join(FILE_SUFFIXES)}")
