"""`convcalc apply` and `convcalc kernels` through CliRunner, on the shipped samples."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from convcalc.cli.main import cli
from tests.conftest import CS231N_ARGS, SAMPLES, run


def test_ufldl_sample_prints_the_feature_map():
    result = run("apply", str(SAMPLES / "ufldl_5x5.txt"), "-k", "1,0,1;0,1,0;1,0,1", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["output"] == [[[4], [3], [4]], [[2], [4], [3]], [[2], [3], [4]]]


def test_table_output_without_o():
    result = run("apply", str(SAMPLES / "maxpool_4x4.txt"), "--pool", "max", "-k", "2")
    assert result.exit_code == 0, result.output
    assert "9" in result.stdout and "6" in result.stdout


def test_edge_sample_with_preset():
    result = run("apply", str(SAMPLES / "edge_6x6.txt"), "-k", "edge-v", "--json")
    doc = json.loads(result.stdout)
    assert [[v[0] for v in row] for row in doc["output"]] == [[0, 30, 30, 0]] * 4


def test_photo_to_png_and_npy(tmp_path):
    out = tmp_path / "edges.png"
    result = run("apply", str(SAMPLES / "photo.png"), "-k", "sobel-x", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "scaled with" in result.stderr
    with Image.open(out) as im:
        assert im.size == (254, 254) and im.mode == "RGB"
    npy = tmp_path / "edges.npy"
    assert (
        run(
            "apply",
            str(SAMPLES / "photo.png"),
            "-k",
            "sobel-x",
            "-p",
            "same",
            "--gray",
            "-o",
            str(npy),
        ).exit_code
        == 0
    )
    assert np.load(npy).shape == (256, 256)


@pytest.mark.parametrize("kernel", ["gauss5", "box:5", "sharpen"])
def test_an_8bit_image_is_what_the_float_result_rounds_to(tmp_path, kernel):
    # blurs of 8-bit images are made as uint8 strip by strip; the PNG must not tell
    base = [str(SAMPLES / "photo.png"), "-k", kernel, "-p", "same", "--pad-mode", "reflect"]
    assert run("apply", *base, "-o", str(tmp_path / "f.npy")).exit_code == 0
    result = run("apply", *base, "-o", str(tmp_path / "b.png"))
    assert result.exit_code == 0, result.output
    exact = np.load(tmp_path / "f.npy")
    with Image.open(tmp_path / "b.png") as im:
        written = np.asarray(im)
    if kernel == "sharpen":  # leaves 0-255: auto maps min..max instead
        assert "scaled with minmax" in result.stderr
    else:
        assert "scaled with clip: [0, 255]" in result.stderr
        np.testing.assert_array_equal(written, np.clip(np.rint(exact), 0, 255))


def test_pipeline_form(tmp_path):
    out = tmp_path / "out.npy"
    result = run(
        "apply",
        str(SAMPLES / "photo.png"),
        "--gray",
        "conv:k=sobel-x",
        "relu",
        "maxpool:2",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    values = np.load(out)
    assert values.shape == (127, 127)
    assert values.min() >= 0


def test_several_inputs_into_a_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = run(
        "apply",
        str(SAMPLES / "ufldl_5x5.txt"),
        str(SAMPLES / "edge_6x6.txt"),
        "-k",
        "box3",
        "-o",
        f"{out}/",
        "-j",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["edge_6x6.txt", "ufldl_5x5.txt"]


def test_output_equal_to_input_is_refused(tmp_path):
    source = tmp_path / "m.txt"
    source.write_text("1 2\n3 4\n")
    result = run("apply", str(source), "-k", "identity", "-p", "1", "-o", str(source))
    assert result.exit_code == 2
    assert source.read_text() == "1 2\n3 4\n"


@pytest.mark.parametrize(
    ("args", "fragment", "status"),
    [
        (["apply", "nosuchfile.png", "-k", "box3"], "nosuchfile.png", 1),
        (["apply", str(SAMPLES / "ufldl_5x5.txt"), "-k", "sobelx"], "sobel-x", 2),
        (["apply", str(SAMPLES / "ufldl_5x5.txt")], "no kernel", 2),
        (["apply", str(SAMPLES / "ufldl_5x5.txt"), "-k", "box3", "-o", "x.xyz"], "xyz", 2),
        (["apply", str(SAMPLES / "ufldl_5x5.txt"), "conv:6,3"], "kernel's values", 2),
        (
            ["apply", str(SAMPLES / "ufldl_5x5.txt"), "-k", "box3", "--bias", "1,2"],
            "2 values for 1 filters",
            2,
        ),
    ],
)
def test_apply_errors(args, fragment, status):
    result = run(*args)
    assert result.exit_code == status, result.output
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_kernels_lists_and_shows():
    listing = run("kernels")
    assert listing.exit_code == 0 and "sobel-x" in listing.stdout
    doc = json.loads(run("kernels", "sobel-x", "--json").stdout)
    assert doc["values"] == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    assert doc["separable"] is True


def test_stdin_to_stdout_png():
    data = (SAMPLES / "photo.png").read_bytes()
    result = CliRunner().invoke(cli, ["apply", "-", "-k", "gauss5", "-o", "-"], input=data)
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes.startswith(b"\x89PNG")


def test_inline_kernel_in_a_pipeline_spec():
    result = run("apply", str(SAMPLES / "ufldl_5x5.txt"), "conv:k=1,0,1;0,1,0;1,0,1,s=2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == [[[4], [4]], [[2], [4]]]


def test_transposed_upsamples_like_the_formula():
    result = run(
        "apply",
        str(SAMPLES / "maxpool_4x4.txt"),
        "--transposed",
        "-k",
        "1,1;1,1",
        "-s",
        "2",
        "--json",
    )
    doc = json.loads(result.stdout)
    assert doc["output_shape"] == [8, 8, 1]
    assert doc["output"][0][0] == [1] and doc["output"][1][1] == [1]  # each value spreads 2x2


def test_channels_sum_gives_one_output_channel(tmp_path):
    out = tmp_path / "sum.npy"
    assert (
        run(
            "apply", str(SAMPLES / "photo.png"), "-k", "box3", "--channels", "sum", "-o", str(out)
        ).exit_code
        == 0
    )
    values = np.load(out)
    photo = np.asarray(Image.open(SAMPLES / "photo.png"), dtype=float)
    assert values.shape == (254, 254)
    assert values[0, 0] == pytest.approx(photo[:3, :3].sum() / 9)


def test_alpha_is_carried_when_the_size_is_kept(tmp_path):
    source = tmp_path / "rgba.png"
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = np.arange(8, dtype=np.uint8)[None, :] * 30
    Image.fromarray(rgba, "RGBA").save(source)
    out = tmp_path / "out.png"
    assert run("apply", str(source), "-k", "box3", "-p", "same", "-o", str(out)).exit_code == 0
    with Image.open(out) as im:
        assert im.mode == "RGBA"
        assert np.array_equal(np.asarray(im)[..., 3], rgba[..., 3])
    smaller = tmp_path / "small.png"
    result = run("apply", str(source), "-k", "box3", "-o", str(smaller))
    assert "alpha dropped" in result.stderr


def test_verbose_names_the_method():
    result = run("apply", str(SAMPLES / "ufldl_5x5.txt"), "-k", "box3", "-v")
    assert "method direct (auto)" in result.stderr


@pytest.mark.parametrize("method", ["direct", "im2col", "fft", "winograd"])
def test_every_method_gives_the_textbook_answer(method):
    result = run(
        "apply",
        str(SAMPLES / "ufldl_5x5.txt"),
        "-k",
        "1,0,1;0,1,0;1,0,1",
        "--method",
        method,
        "--json",
    )
    assert json.loads(result.stdout)["output"] == [
        [[4], [3], [4]],
        [[2], [4], [3]],
        [[2], [3], [4]],
    ]


def test_bench_reports_every_method():
    result = run("bench", str(SAMPLES / "ufldl_5x5.txt"), "-k", "box3", "--repeat", "1", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["method"]: row for row in json.loads(result.stdout)["methods"]}
    assert set(rows) == {"direct", "im2col", "fft", "winograd"}
    assert all(row["max_error"] < 1e-9 for row in rows.values())
    five = run("bench", str(SAMPLES / "ufldl_5x5.txt"), "-k", "box5", "--repeat", "1", "--json")
    winograd = next(r for r in json.loads(five.stdout)["methods"] if r["method"] == "winograd")
    assert winograd["seconds"] is None and "3x3" in winograd["reason"]


def test_a_folder_on_two_worker_processes(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"m{i}.txt").write_text(f"{i} 0 0\n0 {i} 0\n0 0 {i}\n")
    out = tmp_path / "out"
    out.mkdir()
    result = run("apply", str(folder), "-k", "identity", "-p", "1", "-o", f"{out}/", "-j", "2")
    assert result.exit_code == 0, result.output
    for i in range(3):
        assert np.loadtxt(out / f"m{i}.txt").tolist() == (i * np.eye(3)).tolist()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_file_that_fails_in_a_batch_is_named_and_the_others_are_written(tmp_path, jobs):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        (folder / f"m{i}.txt").write_text(f"{i} 0 0\n0 {i} 0\n0 0 {i}\n")
    (folder / "m1.txt").write_text("1 2 3\n4 5\n")  # ragged: fails when read
    (folder / "m2.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    out = tmp_path / "out"
    result = run("apply", str(folder), "-k", "identity", "-p", "1", "-o", f"{out}/", "-j", jobs)
    assert result.exit_code == 1 and result.stdout == ""
    failed = [line for line in result.stderr.splitlines() if " failed: " in line]
    assert [line.split(" failed: ")[0] for line in failed] == [
        str(folder / "m1.txt"),
        str(folder / "m2.png"),
    ]
    assert "2 of 5 inputs failed (named above); the other 3 outputs were written" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["m0.txt", "m2.txt", "m3.txt"]
    assert np.loadtxt(out / "m3.txt").tolist() == (3 * np.eye(3)).tolist()


def test_steps_json_values_equal_the_feature_map():
    args = ["apply", *CS231N_ARGS]
    values = json.loads(run(*args, "--json").stdout)["output"]
    doc = json.loads(run(*args, "--steps", "--json").stdout)
    assert doc["output_shape"] == [3, 3, 2]
    assert len(doc["steps"]) == 18
    first = doc["steps"][0]
    assert first["position"] == [0, 0] and first["bias"] == 1 and first["value"] == 3
    assert [ch["sum"] for ch in first["channels"]] == [2, 2, -2]
    for step in doc["steps"]:
        r, c = step["position"]
        assert step["value"] == values[r][c][step["filter"]]


def test_steps_table_writes_the_products_out():
    result = run(
        "apply", str(SAMPLES / "ufldl_5x5.txt"), "-k", "1,0,1;0,1,0;1,0,1", "--steps", "--at", "0,0"
    )
    assert result.exit_code == 0, result.output
    assert "1×1 + 1×0 + 1×1 + 0×0 + 1×1 + 1×0 + 0×1 + 0×0 + 1×1 = 4" in result.stdout


def test_steps_layer_and_bad_positions():
    base = ["apply", str(SAMPLES / "edge_6x6.txt"), "conv:k=edge-v", "relu", "maxpool:2"]
    doc = json.loads(run(*base, "--steps", "--steps-layer", "3", "--json").stdout)
    assert doc["steps"][0]["op"] == "max" and doc["output_shape"] == [2, 2, 1]
    bad = run(*base, "--steps", "--at", "9,9")
    assert bad.exit_code == 2 and "outside" in bad.stderr
    assert run(*base, "--steps", "--steps-layer", "4").exit_code == 2
    assert run(*base, "--steps", "--at", "x").exit_code == 2


@pytest.mark.parametrize("width", ["50", "120"])
def test_show_never_exceeds_the_terminal_width(width):
    result = CliRunner(env={"COLUMNS": width}).invoke(
        cli, ["apply", str(SAMPLES / "photo.png"), "-k", "sobel-x", "--show"]
    )
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= int(width)
    assert "input 256x256x3" in result.stdout


def test_animate_writes_one_frame_per_position_and_a_final_one(tmp_path):
    out = tmp_path / "slide.gif"
    result = run(
        "animate",
        str(SAMPLES / "ufldl_5x5.txt"),
        "-k",
        "1,0,1;0,1,0;1,0,1",
        "-o",
        str(out),
        "--cell",
        "16",
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as gif:
        assert gif.n_frames == 9 + 1
        small = gif.size
    bigger = tmp_path / "big.gif"
    assert (
        run(
            "animate",
            str(SAMPLES / "ufldl_5x5.txt"),
            "-k",
            "box3",
            "-o",
            str(bigger),
            "--cell",
            "32",
        ).exit_code
        == 0
    )
    with Image.open(bigger) as gif:
        assert gif.size[0] > small[0] and gif.size[1] > small[1]


def test_animate_pooling_and_transposed(tmp_path):
    pool = tmp_path / "pool.gif"
    assert (
        run(
            "animate", str(SAMPLES / "maxpool_4x4.txt"), "--pool", "max", "-k", "2", "-o", str(pool)
        ).exit_code
        == 0
    )
    with Image.open(pool) as gif:
        assert gif.n_frames == 4 + 1
    up = tmp_path / "up.gif"
    assert (
        run(
            "animate",
            str(SAMPLES / "maxpool_4x4.txt"),
            "--transposed",
            "-k",
            "1,1;1,1",
            "-s",
            "2",
            "-o",
            str(up),
        ).exit_code
        == 0
    )
    with Image.open(up) as gif:
        assert gif.n_frames == 16 + 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-k", "box3", "-o", "x.png"], "GIF"),
        (["-k", "box3", "-o", "x.gif", "--cell", "1"], "cell"),
        (["-k", "9x9", "-o", "x.gif"], "kernel"),
    ],
)
def test_animate_errors(tmp_path, args, fragment):
    result = run(
        "animate",
        str(SAMPLES / "ufldl_5x5.txt"),
        *[str(tmp_path / a) if a.endswith((".png", ".gif")) else a for a in args],
    )
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr


def test_kernel_files_read_like_inputs(tmp_path):
    np.save(tmp_path / "k.npy", np.array([[1.0, 0, 1], [0, 1, 0], [1, 0, 1]]))
    (tmp_path / "k.txt").write_text("1 0 1\n0 1 0\n1 0 1\n")
    for kernel in (tmp_path / "k.npy", tmp_path / "k.txt"):
        doc = json.loads(
            run("apply", str(SAMPLES / "ufldl_5x5.txt"), "-k", str(kernel), "--json").stdout
        )
        assert doc["output"][0] == [[4], [3], [4]]
    missing = run("apply", str(SAMPLES / "ufldl_5x5.txt"), "-k", str(tmp_path / "no.npy"))
    assert missing.exit_code == 1 and "not found" in missing.stderr


def test_animate_json_describes_the_gif(tmp_path):
    out = tmp_path / "a.gif"
    result = run(
        "animate",
        str(SAMPLES / "maxpool_4x4.txt"),
        "--pool",
        "max",
        "-k",
        "2",
        "-o",
        str(out),
        "--json",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    with Image.open(out) as gif:
        assert (doc["frames"], doc["width"], doc["height"]) == (gif.n_frames, *gif.size)
    clash = run(
        "animate", str(SAMPLES / "maxpool_4x4.txt"), "--pool", "max", "-k", "2", "-o", "-", "--json"
    )
    assert clash.exit_code == 2 and "stdout" in clash.stderr


def test_png_compression_level(tmp_path):
    sizes, hints = {}, {}
    for level, options in ((1, []), (0, ["--compress", "0"]), (9, ["--compress", "9"])):
        out = tmp_path / f"o{level}.png"
        result = run("apply", str(SAMPLES / "photo.png"), "-k", "gauss5", "-o", str(out), *options)
        assert result.exit_code == 0, result.output
        data = out.read_bytes()
        sizes[level] = len(data)
        hints[level] = data[data.index(b"IDAT") + 5] >> 6  # the zlib header's level hint
        with Image.open(out) as im:
            assert im.size == (252, 252)
    assert sizes[0] > sizes[1] > sizes[9] and hints == {0: 0, 1: 0, 9: 3}  # default: 1


@pytest.mark.parametrize(
    "words", [["(", "relu", "|", "sigmoid", ")", "add"], ["identity*3"], ["@a"]]
)
def test_graph_syntax_is_refused_by_apply_with_what_it_runs(words: list[str]) -> None:
    result = run("apply", str(SAMPLES / "ufldl_5x5.txt"), *words)
    assert result.exit_code == 2 and result.stdout == ""
    assert "apply runs layers one after another" in result.stderr
    assert "conv:k=box3 relu maxpool:2" in result.stderr
