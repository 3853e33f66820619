"""What `convcalc apply` was told, as small records: one per concern."""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from convcalc.calc.choices import FileFormat, PoolKind
from convcalc.calc.layers import Conv, Deconv, Pool
from convcalc.errors import ConvcalcError


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
    groups: int


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
    fsync: bool


class ReportOptions(NamedTuple):
    """What is shown besides the result."""

    verbose: bool
    as_json: bool
    fmt: str
    steps: bool
    at: tuple[str, ...]
    limit: int | None
    steps_layer: int
    show: bool
    backward: bool
    grad_output: str | None


class Run(NamedTuple):
    """Everything one input needs: the layers, how they compute, where results go."""

    stages: list[Any]
    settings: Any
    gray: bool
    out: OutputOptions
    report: ReportOptions
    max_pixels: int | None = None


def refuse_stdout_clash(out: OutputOptions, report: ReportOptions) -> None:
    """Refuse two things asked of stdout at once: it carries one kind of data.

    ``-o -`` writes PNG bytes there, so steps, pictures or JSON beside them would
    make neither readable. (``--show`` with ``--json`` draws on stderr instead.)
    """
    if out.output != "-":
        return
    for asked, flag in (
        (report.steps, "--steps"),
        (report.show, "--show"),
        (report.as_json, "--json"),
    ):
        if asked:
            raise ConvcalcError(
                f"{flag} prints on stdout and -o - writes the PNG there; give -o a file name, "
                f"or drop {flag}"
            )


def refuse_backward_clash(run: Run, inputs: int) -> None:
    """Refuse what --backward does not combine with: its gradients are printed (a
    summary, its steps, or JSON with --json) for one input."""
    report = run.report
    if not report.backward:
        return
    clashes = (
        (run.out.output is not None, f"-o {run.out.output}", "drop -o, and use --json for values"),
        (inputs > 1, f"{inputs} inputs", "give one input"),
        (report.fmt != "table", f"--format {report.fmt}", "use --json, or the printed summary"),
    )
    for clash, what, valid in clashes:
        if clash:
            raise ConvcalcError(
                f"--backward prints the gradients of one input (a summary, or --json) and "
                f"does not combine with {what}; {valid}"
            )


def refuse_rank_clash(run: Run, inputs: int) -> None:
    """Refuse what a 1-D or 3-D run does not do: algorithms other than the direct one,
    several inputs, and image outputs (and text outputs of a volume)."""
    rank = run.settings.rank
    if rank == 2:
        return
    output = run.out.output
    kept = (".npy", ".csv", ".txt") if rank == 1 else (".npy",)
    clashes = (
        (
            str(run.settings.method) not in ("auto", "direct"),
            f"--method {run.settings.method}",
            "it runs the direct method: --method auto or direct",
        ),
        (inputs > 1, f"{inputs} inputs", "give one input at a time"),
        (
            output is not None and not output.lower().endswith(kept),
            f"-o {output}",
            f"write {' or '.join(kept)} (an image is 2-D)",
        ),
    )
    for clash, what, valid in clashes:
        if clash:
            raise ConvcalcError(
                f"a {rank}-D run (a {_RANK_DATA[rank]}) does not take {what}; {valid}"
            )


_RANK_DATA = {1: "signal, L or LxC", 3: "volume, DxHxW or DxHxWxC"}
"""What the data of a 1-D and a 3-D run is, for messages."""


def ignored_options(run: Run, choices: LayerChoices, specs: bool) -> dict[str, str]:
    """The options this run would not use, each with what it needs (click's names).

    ``specs`` is True when layer specs describe the layers, so the options of the
    one-layer form (``-s``, ``--bias`` …) have no layer to apply to.
    """
    layers = [stage.spec.layer for stage in run.stages]
    conv = any(isinstance(layer, Conv) for layer in layers)
    weighted = any(isinstance(layer, Conv | Deconv) for layer in layers)
    average = any(isinstance(layer, Pool) and layer.kind == PoolKind.AVG for layer in layers)
    ignored: dict[str, str] = {}
    if run.out.output or run.report.steps:
        ignored["fmt"] = (
            "formats the printed result table; with -o the file's extension decides, and "
            "--steps prints a table or --json"
        )
    if not run.report.steps:
        ignored |= dict.fromkeys(
            ("at", "limit", "steps_layer"), "needs --steps (it picks which steps are shown)"
        )
    if specs:
        ignored |= dict.fromkeys(_OPTION_LAYER, _IN_SPECS)
    elif choices.pool:
        ignored["bias"] = "needs a convolution (-k KERNEL); a pooling layer has no bias"
        ignored["activation"] = (
            "does not apply to --pool; for pooling then an activation write layer specs: "
            "maxpool:2 relu"
        )
        ignored["transposed"] = "and --pool ask for two different layers; give one of them"
        ignored["groups"] = "needs a convolution (-k KERNEL); a pooling layer has no groups"
        if choices.global_pool:
            ignored |= dict.fromkeys(
                ("kernels", "stride", "padding", "dilation", "ceil"),
                "has no effect on a global pool (--global pools each channel to one value)",
            )
    else:
        ignored["global_pool"] = "needs --pool max or --pool avg"
        ignored["ceil"] = "needs --pool (it rounds a pooling layer's output size up)"
    if not choices.transposed:
        ignored.setdefault("output_padding", "needs --transposed")
    elif not specs:
        ignored.setdefault(
            "groups",
            "does not combine with --transposed: apply runs grouped convolutions, not grouped "
            "transposed ones",
        )
    if not run.report.backward:
        ignored["grad_output"] = "needs --backward (it is the upstream gradient dL/dY)"
    if not conv:
        need = "needs a convolution (-k KERNEL, or conv:k=… in layer specs)"
        ignored |= {"method": need, "pad_mode": need}
    if not weighted:
        ignored |= dict.fromkeys(("flip", "channels"), "needs a convolution (-k KERNEL)")
    elif not any(isinstance(layer, Conv | Deconv) and layer.groups == 1 for layer in layers):
        ignored["channels"] = (
            "has no effect on a grouped layer (--groups, g=): each filter sees the channels "
            "of its group"
        )
    if not average:
        ignored["exclude_pad"] = "needs average pooling (--pool avg, or avgpool:K in layer specs)"
    return ignored | _output_ignored(run.out)


def _output_ignored(out: OutputOptions) -> dict[str, str]:
    """Output options that do not apply to the output asked for (-o)."""
    names = ("scale", "sheet", "compress", "force", "fsync")
    if out.output is None:
        return dict.fromkeys(names, "needs -o FILE (it says how a file is written)")
    if out.output.endswith(("/", os.sep)) or os.path.isdir(out.output):
        return {}  # each output is named after its input: its format is not known yet
    from convcalc.io.writing import output_format

    try:
        fmt = output_format(out.output)
    except ConvcalcError:
        return {}  # an unknown extension: the writer names the valid ones
    ignored: dict[str, str] = {}
    if fmt in (FileFormat.NPY, FileFormat.TEXT):
        written = f"a {fmt} file keeps the values as they are"
        ignored |= dict.fromkeys(("scale", "sheet"), f"needs an image output; {written}")
    if fmt != FileFormat.PNG:
        ignored["compress"] = f"needs a PNG output; -o {out.output} writes {fmt}"
    if out.output == "-":
        ignored["force"] = "needs -o FILE; -o - writes to stdout"
        ignored["fsync"] = "needs -o FILE; -o - writes to stdout, which is not flushed to a disk"
    return ignored


_OPTION_LAYER = (
    "stride",
    "padding",
    "dilation",
    "bias",
    "activation",
    "global_pool",
    "ceil",
    "transposed",
    "output_padding",
    "groups",
)
"""The options that describe the one layer of the option form (-k, --pool)."""

_IN_SPECS = (
    "describes the layer of the option form (-k, --pool); with layer specs write it in "
    "the spec, e.g. conv:k=box3,s=2,p=1 or maxpool:3,s=2,ceil"
)
