"""The `convcalc` command group: its commands, loaded lazily, and where errors end.

Start-up matters here: a command's module is imported only when it runs (or help
lists it), so `shape` and `params` import neither numpy nor Pillow, and rich only
when they print a table.

While a command runs (`ConvcalcGroup.main`):

- SIGTERM and SIGHUP raise `convcalc.cli.status.Terminated` in a command that writes
  files (`convcalc.cli.signals.writes_files`), as SIGINT raises
  KeyboardInterrupt, so that the command unwinds (a write in progress removes its
  temporary file) and exits with 128 + the signal number; a signal ignored at start
  (``nohup``) stays ignored.
- stdout write errors (a full disk, ``> /dev/full``) become one RuntimeFailure,
  "cannot write to stdout: ..." (exit 1); what is still buffered is then dropped.
- On stdout and stderr, a character the encoding cannot write (``→`` on a cp1252
  Windows redirection) is written in ASCII (``->``), never a UnicodeEncodeError.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import click

from convcalc import __version__
from convcalc.cli.command import ConvcalcCommand
from convcalc.cli.signals import signals_raised, writes_files
from convcalc.cli.status import failure_of, internal_error, report
from convcalc.cli.streams import ascii_fallback, guarded_stdout

# apply, animate and bench run their strips on convcalc's own threads, one per core
# (convcalc.compute.arrays.threads): a BLAS pool under each thread would contend for
# the same cores (benchmarks/README.md). Read by BLAS when numpy loads, which no module
# above does; a value the user set wins.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")


class ConvcalcGroup(click.Group):
    """A click group that loads its commands lazily and turns every error into one
    line on stderr and an exit status (the policy is `convcalc.cli.status`)."""

    command_class = ConvcalcCommand
    lazy_commands: ClassVar[dict[str, str]] = {
        "shape": "shape",
        "params": "params",
        "apply": "apply",
        "animate": "animate",
        "bench": "bench",
        "kernels": "kernels",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.lazy_commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_commands:
            return None
        module = importlib.import_module(f"convcalc.cli.{self.lazy_commands[cmd_name]}")
        command: click.Command = getattr(module, cmd_name)
        return command

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        with (
            ascii_fallback(),
            guarded_stdout(),
            signals_raised(writes_files(argv)) as restore_signals,
        ):
            try:
                super().main(argv, prog_name, complete_var, False, **extra)
                if sys.stdout is not None:
                    sys.stdout.flush()  # a full stdout fails here, not at exit
                restore_signals()
            except BaseException as exc:  # every way out goes through the policy
                restore_signals()
                if isinstance(exc, SystemExit):
                    raise
                failure = failure_of(exc)
                if failure is None:
                    if "--debug" in argv:
                        raise
                    failure = internal_error(exc)
                report(failure)
                status = failure.status
            else:
                status = 0
        sys.exit(status)


@click.group(cls=ConvcalcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="convcalc")
@click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    help="Show the Python traceback of an internal error (for bug reports).",
)
def cli() -> None:
    """Convolution calculator and visualizer: shapes, parameters, and the arithmetic."""


START_UP_GC_THRESHOLD = 10_000
"""Allocations between young-generation collections in the command (Python's: 700)."""


def main() -> None:
    """Console-script entry point.

    A run imports some 20,000 long-lived objects (click, numpy, convcalc); at Python's
    default threshold the collector walks them again and again while they load, and the
    interpreter's exit walks them all once more: 40-60 ms of a 0.4 s `apply` on a
    4096x4096 .npy (benchmarks/README.md). The collector stays on at a higher threshold,
    for the cycles a long folder run makes; what exists at exit is frozen, since the
    process ends there and its memory goes back with it.
    """
    gc.set_threshold(START_UP_GC_THRESHOLD, *gc.get_threshold()[1:])
    try:
        cli(prog_name="convcalc")
    finally:
        gc.freeze()
