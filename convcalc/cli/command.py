"""The click command class every convcalc command is made with."""

from __future__ import annotations

from collections.abc import Sequence

import click


class ConvcalcCommand(click.Command):
    """A click command whose short options (``-k 3``) are found at once.

    click tries every option as a long one first, and for ``-k`` builds a
    NoSuchOption (importing difflib and looking up message translations) before
    trying it as a short one: about 3 ms of `convcalc shape`'s start. Writing a
    standalone short option under its long name first skips that; ``-k3`` and
    ``-qk 3`` still take click's short-option route.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _long_names(self.params, args))


def _long_names(params: Sequence[click.Parameter], args: list[str]) -> list[str]:
    """``args`` with each standalone short option (``-k``) written as its long name."""
    long_of: dict[str, tuple[str, bool]] = {}
    for param in params:
        if isinstance(param, click.Option):
            names = param.opts + param.secondary_opts
            longs = [n for n in names if n.startswith("--")]
            for name in names:
                if len(name) == 2 and longs and name not in long_of:
                    long_of[name] = (longs[0], not param.is_flag and not param.count)
    out: list[str] = []
    takes_value = False
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        if takes_value:
            out.append(arg)
            takes_value = False
            continue
        name, takes_value = long_of.get(arg, (arg, False))
        out.append(name)
    return out
