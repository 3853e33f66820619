"""Rewrite the output shown under each `$ convcalc ...` example in README.md.

Run by hand after a deliberate change of output, then read the diff:
    python tools/refresh_readme.py && git diff README.md
Examples that write files (-o) or time things (bench) are left as they are, as
tests/cli/test_readme.py leaves them; an example cut with a `…` line keeps its cut.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from convcalc.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```\n(.*?)```", re.S)


def refreshed(block: str) -> str:
    """A README code block with each runnable example's output as it is now."""
    out: list[str] = []
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if not line.startswith("$ convcalc ") or " -o " in line or " bench " in line:
            continue
        shown = []
        while i < len(lines) and not lines[i].startswith("$ "):
            shown.append(lines[i])
            i += 1
        trailing = []
        while shown and not shown[-1].strip():
            trailing.append(shown.pop())
        result = CliRunner().invoke(cli, shlex.split(line[2:])[1:])
        actual = [a.rstrip() for a in (result.stdout + result.stderr).splitlines()]
        while actual and not actual[-1]:
            actual.pop()
        if "…" in shown:
            actual = actual[: shown.index("…")] + shown[shown.index("…") :]
        out += actual + trailing
    return "\n".join(out) + "\n"


def main() -> None:
    os.chdir(ROOT)
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(
        BLOCK.sub(lambda m: "```\n" + refreshed(m.group(1)) + "```", text), encoding="utf-8"
    )


if __name__ == "__main__":
    main()
