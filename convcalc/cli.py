"""The command line: a thin click layer over convcalc's core.

Start-up matters here: `shape` and `params` import neither numpy nor Pillow, and
rich only when they print a table.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from convcalc import __version__
from convcalc.errors import ConvcalcError


class ConvcalcGroup(click.Group):
    """A click group that turns every error into one line on stderr and an exit status."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            _fail(exc.format_message(), _help_hint(exc.ctx), 2)
        except ConvcalcError as exc:
            _fail(str(exc), exc.hint, exc.exit_code)
        except (KeyboardInterrupt, click.Abort):
            _fail("interrupted", None, 130)
        except BrokenPipeError:
            sys.exit(1)
        sys.exit(0)


def _help_hint(ctx: click.Context | None) -> str | None:
    if ctx is None:
        return None
    return f"Try '{ctx.command_path} --help' for help."


def _fail(message: str, hint: str | None, status: int) -> None:
    click.echo(f"Error: {message}", err=True)
    if hint:
        click.echo(hint, err=True)
    sys.exit(status)


@click.group(cls=ConvcalcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="convcalc")
def cli() -> None:
    """Convolution calculator and visualizer: shapes, parameters, and the arithmetic."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="convcalc")
