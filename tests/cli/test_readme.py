"""The README's examples print what the README says they print."""

import re
import shlex

import pytest
from click.testing import CliRunner

from convcalc.cli.main import cli
from tests.conftest import ROOT

BLOCK = re.compile(r"```\n(.*?)```", re.S)


def examples() -> list[tuple[str, list[str]]]:
    """(command, expected lines) for each `$ convcalc ...` in a README code block."""
    found = []
    for block in BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8")):
        command, lines = None, []
        for line in [*block.splitlines(), "$ end"]:
            if line.startswith("$ "):
                while lines and not lines[-1].strip():
                    lines.pop()
                if command and command.startswith("convcalc "):
                    found.append((command, lines))
                command, lines = line[2:], []
            elif command is not None:
                lines.append(line)
    return [(c, out) for c, out in found if " -o " not in c and " bench " not in c]


@pytest.mark.parametrize(("command", "expected"), examples(), ids=lambda v: str(v)[:60])
def test_readme_example(command, expected, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, shlex.split(command)[1:])
    actual = [line.rstrip() for line in (result.stdout + result.stderr).splitlines()]
    while actual and not actual[-1]:
        actual.pop()
    shown = expected[: expected.index("…")] if "…" in expected else expected
    assert actual[: len(shown)] == [line.rstrip() for line in shown]
    if "…" not in expected:
        assert len(actual) == len(shown)


def test_examples_were_found():
    assert len(examples()) >= 12
