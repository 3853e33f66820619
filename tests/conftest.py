"""What the tests share: the samples, the classic matrices, the CLI runner, golden files.

Golden files change only through ``pytest --update-golden``, which rewrites the
ones that differ and prints each change as a diff at the end of the run.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from convcalc.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
GOLDEN = Path(__file__).resolve().parent / "golden"

UFLDL = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
)
"""The 5x5 binary image of the UFLDL tutorial's convolution example."""

CROSS = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])
"""The UFLDL example's 3x3 kernel."""

CS231N_X = np.stack(
    [
        [[2, 0, 2, 0, 1], [0, 0, 1, 1, 1], [2, 0, 1, 0, 0], [0, 0, 1, 0, 0], [1, 0, 1, 0, 0]],
        [[0, 0, 1, 0, 1], [2, 0, 2, 1, 0], [2, 0, 2, 2, 2], [0, 2, 0, 2, 0], [1, 1, 2, 1, 0]],
        [[0, 2, 0, 1, 0], [2, 1, 1, 1, 2], [2, 1, 2, 0, 2], [0, 1, 1, 1, 2], [0, 1, 2, 1, 1]],
    ],
    axis=2,
)
"""The 5x5x3 input of CS231n's two-filter convolution demo (samples/cs231n_5x5x3.txt)."""

CS231N_W0 = np.stack(
    [
        [[1, 0, 1], [-1, 1, 1], [1, 0, 0]],
        [[-1, -1, 1], [1, 1, 1], [0, 1, 1]],
        [[1, 0, 0], [-1, 0, -1], [-1, 0, 0]],
    ],
    axis=2,
).astype(float)
"""The demo's first 3x3x3 filter (samples/cs231n_w0.txt); its bias is 1."""

CS231N_W1 = np.stack(
    [
        [[0, 1, 0], [-1, 0, 0], [1, 1, -1]],
        [[-1, 1, 1], [0, 0, 1], [-1, -1, 0]],
        [[-1, -1, -1], [0, -1, -1], [-1, 1, 1]],
    ],
    axis=2,
).astype(float)
"""The demo's second filter (samples/cs231n_w1.txt); its bias is 0."""

CS231N_ARGS = [
    str(SAMPLES / "cs231n_5x5x3.txt"),
    "-k",
    str(SAMPLES / "cs231n_w0.txt"),
    "-k",
    str(SAMPLES / "cs231n_w1.txt"),
    "--bias",
    "1,0",
    "-p",
    "1",
    "-s",
    "2",
]
"""`convcalc apply`'s arguments for the demo: both filters, their biases, pad 1, stride 2."""


def run(*args: str, stdin: bytes | str | None = None, **runner: Any) -> Result:
    """``convcalc ARGS`` through click's CliRunner (stdout and stderr kept apart)."""
    return CliRunner(**runner).invoke(cli, list(args), input=stdin)


def run_json(*args: str) -> Any:
    """``convcalc ARGS --json``, asserted to succeed, as parsed JSON."""
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite golden files that differ and show the diffs.",
    )


_CHANGES: list[str] = []


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``golden(name, text)``: assert ``text`` equals tests/golden/NAME.txt."""
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = GOLDEN / f"{name}.txt"
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if update and text != old:
            path.write_text(text, encoding="utf-8")
            _CHANGES.append(
                "".join(
                    difflib.unified_diff(
                        old.splitlines(True),
                        text.splitlines(True),
                        f"a/{path.name}",
                        f"b/{path.name}",
                    )
                )
            )
            return
        assert text == old, f"{path.name} differs; see it with pytest --update-golden"

    return check


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _CHANGES:
        terminalreporter.section("golden files rewritten")
        for diff in _CHANGES:
            terminalreporter.write(diff)
