import subprocess
import sys

from click.testing import CliRunner

from convcalc import __version__
from convcalc.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


def test_python_dash_m_runs_the_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "convcalc", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert __version__ in proc.stdout


def test_unknown_command_is_one_line_and_exit_2():
    result = run("nosuchcommand")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
