"""What `convcalc apply` was told, as small records: one per concern."""

from __future__ import annotations

from typing import Any, NamedTuple


class LayerChoices(NamedTuple):
    """The one layer the options describe (when no layer specs are given)."""

    kernels: tuple[str, ...]
    bias: str | None
    stride: str | None
    padding: str | None
    dilation: str | None
    pool: str | None
    global_pool: bool
    ceil: bool
    transposed: bool
    output_padding: str
    activation: str


class HowOptions(NamedTuple):
    """How every layer computes: padding fill, method, channels, rules."""

    pad_mode: str
    method: str
    channels: str
    flip: bool
    exclude_pad: bool
    convention: str


class OutputOptions(NamedTuple):
    """Where the result goes and how it is written."""

    output: str | None
    scale: str
    sheet: bool
    force: bool
    compress: int


class ReportOptions(NamedTuple):
    """What is shown besides the result."""

    verbose: bool
    as_json: bool
    steps: bool
    at: tuple[str, ...]
    limit: int | None
    steps_layer: int
    show: bool


class Run(NamedTuple):
    """Everything one input needs: the layers, how they compute, where results go."""

    stages: list[Any]
    settings: Any
    gray: bool
    out: OutputOptions
    report: ReportOptions
