"""`shape --training` through the command line."""

from __future__ import annotations

import pytest

from tests.conftest import run, run_json

KEYS = {
    "batch",
    "dtype",
    "optimizer",
    "weights_bytes",
    "gradients_bytes",
    "optimizer_bytes",
    "activations_bytes",
    "total_bytes",
    "forward_macs",
    "backward_macs",
}


def test_json_has_the_training_object_of_the_contract():
    doc = run_json(
        "shape",
        "224x224x3",
        "--net",
        "resnet50",
        "--training",
        "--batch",
        "32",
        "--optimizer",
        "adam",
        "--dtype",
        "fp16",
    )
    training = doc["training"]
    assert set(training) >= KEYS
    assert (training["batch"], training["dtype"], training["optimizer"]) == (32, "fp16", "adam")
    assert training["weights_bytes"] == 2 * doc["total_params"]
    assert training["optimizer_bytes"] == 2 * training["weights_bytes"]
    assert training["forward_macs"] == 32 * doc["total_macs"]
    assert len(training["layers"]) == len(doc["layers"])
    assert sum(layer["kept_bytes"] for layer in training["layers"]) == training["activations_bytes"]


def test_the_table_gains_the_training_columns_and_totals():
    text = run("shape", "32x32x3", "--net", "lenet5", "--training", "--batch", "8").stdout
    assert "kept" in text and "bwd MACs" in text
    assert "training step: batch 8, fp32, sgd" in text and "= peak" in text


@pytest.mark.parametrize("option", [["--batch", "8"], ["--optimizer", "adam"], ["--dtype", "fp16"]])
def test_training_options_without_training_are_refused(option):
    result = run("shape", "32x32x3", "--net", "lenet5", *option)
    assert result.exit_code == 2 and "needs --training" in result.stderr
