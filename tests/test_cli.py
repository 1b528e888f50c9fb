"""The keras-cnn command line (export)."""

import json
import os

import keras
import pytest

import keras_cnn
from keras_cnn import cli


def test_export_command_writes_verified_files_and_a_summary(tmp_path, capsys):
    assert cli.main(["export", "--model", "lenet5", "--classes", "10", "--option", "pool=max",
                     "--format", "savedmodel,tflite,onnx", "--quantization", "int8", "--representative", "digits",
                     "--samples", "50", "--class-names", ",".join("0123456789"), "--output", str(tmp_path)]) == 0
    assert sorted(os.listdir(tmp_path)) == ["lenet5", "lenet5.onnx", "lenet5_int8.labels.txt",
                                            "lenet5_int8.tflite", "lenet5_int8.tflite.json"]
    sidecar = json.loads((tmp_path / "lenet5_int8.tflite.json").read_text())
    assert sidecar["class_names"] == list("0123456789") and sidecar["preprocessing"]["scale"] == 1 / 255
    out = capsys.readouterr().out
    assert "[3/3] onnx: done" in out and "Exported lenet5" in out and "max |diff| vs Keras" in out


def test_export_from_a_saved_keras_file(tmp_path):
    model = keras_cnn.build("lenet5", classes=4, name="tiny")
    model.save(tmp_path / "tiny.keras")
    cli.main(["export", "--from", str(tmp_path / "tiny.keras"), "--format", "onnx", "--output", str(tmp_path)])
    assert (tmp_path / "tiny.onnx").is_file()
    assert keras.saving.load_model(tmp_path / "tiny.keras").name == "tiny"


@pytest.mark.parametrize("argv, pattern", [
    (["export", "--model", "lenet5", "--format", "pdf"], "--format must list some of savedmodel, tflite, onnx"),
    (["export", "--model", "lenet5", "--quantization", "int8"], "needs --representative"),
    (["frobnicate"], "usage: keras-cnn"),
])
def test_cli_errors_are_clear(argv, pattern, tmp_path):
    with pytest.raises(SystemExit, match=pattern):
        cli.main([*argv, "--output", str(tmp_path)] if argv[0] == "export" else argv)
