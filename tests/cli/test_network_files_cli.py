"""`--net FILE.onnx|.keras|.json` through the command line."""

from __future__ import annotations

from tests.conftest import ROOT, run, run_json

DATA = ROOT / "tests" / "data"


def test_explain_names_the_files_nodes():
    text = run("shape", "--net", str(DATA / "resnet18.onnx"), "--explain").stdout
    assert "(resnet18.onnx node '/conv1/Conv')" in text


def test_a_keras_file_is_read_with_tensorflows_rules_and_says_so():
    doc = run_json("shape", "--net", str(DATA / "keras_lenet.keras"))
    assert doc["convention"] == "tf"
    assert "(tf rules)" in run("shape", "--net", str(DATA / "keras_lenet.keras")).stdout


def test_a_given_input_overrides_the_files():
    doc = run_json("shape", "112x112x3", "--net", str(DATA / "resnet18.onnx"))
    assert doc["input_shape"] == [112, 112, 3] and doc["output_shape"] == [1000]


def test_a_network_file_refuses_specs_beside_it():
    result = run("shape", "224x224x3", "relu", "--net", str(DATA / "resnet18.onnx"))
    assert result.exit_code == 2 and "takes no layer specs" in result.stderr


def test_what_a_keras_file_counts_otherwise_is_said(tmp_path):
    import json

    config = json.loads((DATA / "keras_functional.json").read_text())

    def freeze_first_conv(node: object) -> bool:
        if isinstance(node, dict):
            if node.get("class_name") == "Conv2D":
                node["config"]["trainable"] = False
                return True
            return any(freeze_first_conv(value) for value in node.values())
        return isinstance(node, list) and any(freeze_first_conv(v) for v in node)

    assert freeze_first_conv(config)
    frozen = tmp_path / "frozen.json"
    frozen.write_text(json.dumps(config))
    result = run("shape", "--net", str(frozen), "--json")
    assert result.exit_code == 0
    assert "is frozen (trainable: false); its weights count as trainable" in result.stderr
    assert "moving statistics are not" in result.stderr  # the file's BN without scale
