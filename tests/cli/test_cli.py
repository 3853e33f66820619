"""The command line through click's CliRunner: exit codes, JSON, one-line errors."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from convcalc import __version__
from convcalc.cli.main import cli
from tests.conftest import run, run_json


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


GC_AFTER_A_RUN = """
import gc, sys
from convcalc.cli.main import START_UP_GC_THRESHOLD, main
sys.argv = ["convcalc", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    status = exc.code
print(status, gc.isenabled(), gc.get_threshold()[0] == START_UP_GC_THRESHOLD, gc.get_freeze_count())
"""


@pytest.mark.parametrize("args", [["shape", "32", "-k", "3", "-q"], ["shape", "32", "-k", "0"]])
def test_the_command_collects_at_a_higher_threshold_and_freezes_what_is_left(args):
    proc = subprocess.run(
        [sys.executable, "-c", GC_AFTER_A_RUN, *args], capture_output=True, text=True
    )
    status, enabled, raised, frozen = proc.stdout.splitlines()[-1].split()
    assert (enabled, raised) == ("True", "True")
    assert int(frozen) > 1000  # click and convcalc's modules at least
    assert int(status) == (0 if args[-1] == "-q" else 2)


@pytest.mark.parametrize(("given", "expected"), [(None, "1 1"), ("3", "3 1")])
def test_blas_runs_one_thread_under_convcalcs_own_unless_the_user_said(given, expected):
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    }
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    code = (
        "import os, convcalc.cli.main\n"
        "print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.stdout.split() == expected.split()


@pytest.mark.parametrize("command", ["animate", "apply", "bench", "kernels", "params", "shape"])
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Examples" in result.output


def _imported(argv: list[str], modules: tuple[str, ...]) -> str:
    """``convcalc ARGV`` in a fresh interpreter; its stdout ends with the modules it loaded."""
    code = (
        "import sys\n"
        "from convcalc.cli.main import cli\n"
        "try:\n"
        f"    cli({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"bad = [m for m in {modules!r} if m in sys.modules]\n"
        "print('imported:', bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return proc.stdout.strip() + proc.stderr


@pytest.mark.parametrize("command", ["shape", "params"])
def test_shape_and_params_import_neither_numpy_nor_pillow_nor_rich(command):
    argv = [command, "224x224x3", "-k", "7", "-s", "2", "-p", "3", "--filters", "64", "--json"]
    # difflib: click's detour for short options (see ConvcalcCommand)
    out = _imported(argv, ("numpy", "PIL", "rich", "difflib"))
    assert out.endswith("imported: []"), out


@pytest.mark.parametrize(
    "argv",
    [
        ["shape", "224x224x3", "--net", "resnet50"],
        ["params", "224x224x3", "-k", "7", "--filters", "64"],
        ["params", "224x224x3", "--net", "vgg16"],
        ["shape", "224x224x3", "--net", "resnet50", "--training", "--format", "csv"],
    ],
)
def test_shape_and_params_tables_import_neither_numpy_nor_pillow(argv):
    out = _imported(argv, ("numpy", "PIL"))
    assert out.endswith("imported: []"), out


def test_a_channels_first_input_is_computed_as_written_with_a_note_on_stderr():
    result = run("shape", "3x224x224", "-k", "7", "-s", "2", "-p", "3", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["input_shape"] == [3, 224, 224]
    assert "note: input 3x224x224 is read as HxWxC" in result.stderr
    assert "channels go last: 224x224x3" in result.stderr
    assert "note" not in run("shape", "224x224x3", "-k", "7", "-q").stderr


def test_quiet_prints_only_the_shape():
    assert run("shape", "7", "-k", "3", "-s", "2", "-q").stdout == "3\n"
    result = run("shape", "224x224x3", "-k", "7", "-s", "2", "-p", "3", "--filters", "64", "-q")
    assert result.stdout == "112x112x64\n"


def test_single_layer_shows_the_formula():
    result = run("shape", "7", "-k", "3", "-s", "2")
    assert result.exit_code == 0
    assert "(7 + 2·0 − 3)/2 + 1 = 3" in result.stdout


def test_same_padding_reports_the_split():
    doc = run_json("shape", "28x28", "-k", "3", "-s", "2", "--padding", "same")
    assert doc["output_shape"] == [14, 14]
    assert [ax["padding"] for ax in doc["axes"]] == [[0, 1], [0, 1]]
    assert doc["exact"] is True


def test_single_layer_json_keys():
    doc = run_json("shape", "8", "-k", "3", "-s", "2")
    assert doc["output_shape"] == [3]
    assert doc["exact"] is False
    assert doc["formula"] == "⌊(8 + 2·0 − 3)/2⌋ + 1 = 3"
    assert doc["axes"][0]["uncovered"] == 1


def test_pooling_ceil_and_transposed_options():
    assert (
        run("shape", "5", "-k", "2", "-s", "3", "-p", "1", "--pool", "max", "--ceil", "-q").stdout
        == "2\n"
    )
    assert (
        run(
            "shape",
            "3",
            "-k",
            "3",
            "-s",
            "2",
            "-p",
            "1",
            "--transposed",
            "--output-padding",
            "1",
            "-q",
        ).stdout
        == "6\n"
    )


def test_stack_json_has_one_entry_per_layer():
    doc = run_json(
        "shape",
        "32x32x3",
        "conv:6,5",
        "maxpool:2",
        "conv:16,5",
        "maxpool:2",
        "fc:120",
        "fc:84",
        "fc:10",
    )
    assert [layer["output_shape"] for layer in doc["layers"]] == [
        [28, 28, 6],
        [14, 14, 6],
        [10, 10, 16],
        [5, 5, 16],
        [120],
        [84],
        [10],
    ]
    assert [layer["op"] for layer in doc["layers"]][:2] == ["conv", "maxpool"]
    assert doc["total_params"] == sum(layer["params"] for layer in doc["layers"])
    assert doc["total_macs"] == sum(layer["macs"] for layer in doc["layers"])
    assert doc["layers"][0]["receptive_field"]["size"] == [5, 5]


def test_net_preset_and_file(tmp_path):
    doc = run_json("shape", "224x224x3", "--net", "resnet18")
    assert doc["total_params"] == 11_689_512
    net = tmp_path / "tiny.txt"
    net.write_text("# a tiny net\nconv:8,3,p=1  # keeps size\nmaxpool:2\n")
    doc = run_json("shape", "16x16x3", "--net", str(net))
    assert doc["output_shape"] == [8, 8, 8]


def test_stack_table_shows_totals_and_flops():
    result = run("shape", "224x224x3", "--net", "vgg16")
    assert result.exit_code == 0
    assert "138,357,544" in result.stdout
    assert "FLOPs = 2 × MACs" in result.stdout


def test_explain_prints_each_formula():
    result = run("shape", "32x32x3", "conv:6,5", "maxpool:2", "--explain")
    assert "(32 + 2·0 − 5)/1 + 1 = 28" in result.stdout
    assert "(28 + 2·0 − 2)/2 + 1 = 14" in result.stdout
    assert "r = 5 + (2 − 1)·1 = 6" in result.stdout


def test_strict_fails_with_exit_2():
    result = run("shape", "8", "-k", "3", "-s", "2", "--strict")
    assert result.exit_code == 2
    assert "not exact" in result.stderr


def test_target_search():
    doc = run_json("shape", "224", "--target", "112", "-k", "3")
    assert {
        "transposed": False,
        "kernel": 3,
        "stride": 2,
        "padding": "1",
        "dilation": 1,
        "output_padding": 0,
        "exact": False,
        "layer": "conv:_,3,s=2,p=1",
    } in doc["solutions"]
    quiet = run("shape", "224", "--target", "112", "-k", "3", "-q").stdout.splitlines()
    assert "conv:_,3,s=2,p=1" in quiet


def test_convention_is_reported_and_changes_pool_rounding():
    torch = run_json("shape", "112x112x64", "maxpool:3,s=2")
    caffe = run_json("shape", "112x112x64", "maxpool:3,s=2", "--convention", "caffe")
    assert torch["output_shape"] == [55, 55, 64] and torch["convention"] == "torch"
    assert caffe["output_shape"] == [56, 56, 64] and caffe["convention"] == "caffe"


# -- params -------------------------------------------------------------------


def test_params_side_by_side():
    doc = run_json("params", "32x32x3", "-k", "5", "--filters", "10", "-p", "2")
    assert doc["output_shape"] == [32, 32, 10]
    assert doc["conv_params"] == 760
    assert doc["local_params"] == 32 * 32 * 10 * (5 * 5 * 3 + 1)
    assert doc["dense_params"] == (32 * 32 * 3) * (32 * 32 * 10) + 32 * 32 * 10
    assert doc["conv_macs"] == doc["local_macs"] == 32 * 32 * 10 * 75


def test_params_with_units_and_no_bias():
    doc = run_json(
        "params", "100x100x3", "-k", "10", "--filters", "10", "--units", "100", "--no-bias"
    )
    assert doc["output_shape"] == [91, 91, 10]
    assert doc["conv_params"] == 3000
    assert doc["units_params"] == 3_000_000


def test_params_alexnet_first_layer_unshared():
    doc = run_json("params", "227x227x3", "-k", "11", "-s", "4", "--filters", "96")
    assert doc["conv_params"] == 34_944
    assert doc["local_params"] == 105_705_600


def test_params_table_has_a_reading():
    result = run("params", "32x32x3", "-k", "5", "--filters", "10", "-p", "2")
    assert result.exit_code == 0
    assert "locally connected" in result.stdout
    assert "Weight sharing reuses" in result.stdout


def test_params_stack_compares_each_conv_layer():
    doc = run_json("params", "32x32x3", "--net", "lenet5")
    assert [layer["conv_params"] for layer in doc["layers"]] == [456, 2416]


def test_params_groups():
    doc = run_json("params", "8x8x32", "-k", "3", "--filters", "64", "--groups", "4")
    assert doc["conv_params"] == 3 * 3 * 8 * 64 + 64


# -- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["shape", "abc", "-k", "3"], "input shape 'abc'"),
        (["shape", "7", "-k", "9"], "kernel 9"),
        (["shape", "7", "-k", "3", "-s", "0"], "stride '0'"),
        (["shape", "7", "-k", "3", "-p", "-1"], "padding '-1'"),
        (["shape", "32x32x3", "conv:6"], "missing kernel"),
        (["shape", "32x32x3", "blah:3"], "unknown layer 'blah'"),
        (["shape", "32x32x3", "conv:6,5,q=2"], "unknown key 'q'"),
        (["shape", "32x32x3", "fc:10", "conv:6,5"], "flat vector"),
        (["shape", "32x32x3", "--net", "nosuchnet"], "unknown network"),
        (["shape", "32x32x3", "-k", "3", "conv:6,5"], "not both"),
        (["shape", "32x32x3"], "nothing to compute"),
        (["params", "32x32x3", "-k", "3", "--groups", "2", "--filters", "4"], "groups 2"),
        (["shape", "7", "-k", "2", "--pool", "max", "-p", "2"], "pooling padding 2"),
        (["shape", "3", "-k", "3", "--transposed", "--output-padding", "1"], "output_padding 1"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, fragment):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_missing_net_file_is_exit_1(tmp_path):
    result = run("shape", "32x32x3", "--net", str(tmp_path))
    assert result.exit_code == 1
    assert "directory" in result.stderr


def test_net_file_error_names_file_and_line(tmp_path):
    net = tmp_path / "bad.txt"
    net.write_text("conv:6,5\nmaxpool:x\n")
    result = run("shape", "32x32x3", "--net", str(net))
    assert result.exit_code == 2
    assert f"{net}:2" in result.stderr


def test_help_lists_every_command():
    result = run("--help")
    for command in ("animate", "apply", "bench", "kernels", "params", "shape"):
        assert command in result.stdout


def test_apply_on_arrays_does_not_load_pillow_or_rich(tmp_path):
    import numpy as np

    np.save(tmp_path / "in.npy", np.ones((6, 6), np.float32))
    code = (
        "import sys\n"
        "from convcalc.cli.main import cli\n"
        "try:\n"
        f"    cli(['apply', r'{tmp_path / 'in.npy'}', '-k', 'box3', '-o', "
        f"r'{tmp_path / 'out.npy'}'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('imported:', [m for m in ('PIL', 'rich') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().endswith("imported: []"), proc.stdout + proc.stderr
    assert (tmp_path / "out.npy").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["-k", "3", "-s", "2"],
        ["--kernel", "3", "--stride", "2"],
        ["-k3", "-s2"],
        ["--kernel=3", "-s", "2"],
    ],
)
def test_short_and_long_options_parse_alike(args):
    result = CliRunner().invoke(cli, ["shape", "224", *args, "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "111"
