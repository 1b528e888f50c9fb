"""The keras-cnn command line: export (train, evaluate and predict: tests/test_apps.py)."""

import json
import os

import keras

import keras_cnn
from keras_cnn import cli


def test_export_command_writes_verified_files_and_a_summary(tmp_path, capsys):
    assert cli.main(["export", "--model", "lenet5", "--classes", "10", "--option", "pool=max",
                     "--format", "savedmodel,tflite,onnx", "--quantization", "int8", "--representative", "digits",
                     "--samples", "50", "--class-names", ",".join("0123456789"), "--output", str(tmp_path)]) == 0
    assert sorted(os.listdir(tmp_path)) == ["lenet5", "lenet5.int8.labels.txt", "lenet5.int8.onnx",
                                            "lenet5.int8.tflite", "lenet5.int8.tflite.json", "lenet5.onnx"]
    sidecar = json.loads((tmp_path / "lenet5.int8.tflite.json").read_text())
    assert sidecar["class_names"] == list("0123456789") and sidecar["preprocessing"]["scale"] == 1 / 255
    out = capsys.readouterr().out
    assert "[4/4] onnx int8: done" in out and "Exported lenet5" in out and "max |diff| vs Keras" in out
    assert "onnx (int8)" in out  # the summary's row of onnxruntime's static int8 file


def test_export_from_a_saved_keras_file(tmp_path):
    model = keras_cnn.build("lenet5", classes=4, name="tiny")
    model.save(tmp_path / "tiny.keras")
    cli.main(["export", "--from", str(tmp_path / "tiny.keras"), "--format", "onnx", "--output", str(tmp_path)])
    assert (tmp_path / "tiny.onnx").is_file()
    assert keras.saving.load_model(tmp_path / "tiny.keras").name == "tiny"


def test_export_writes_several_tflite_variants_in_one_run(tmp_path, capsys):
    cli.main(["export", "--model", "lenet5", "--classes", "10", "--format", "tflite", "--quantization",
              "none,float16,dynamic", "--output", str(tmp_path)])
    assert sorted(os.listdir(tmp_path)) == ["lenet5.dynamic.tflite", "lenet5.dynamic.tflite.json",
                                            "lenet5.float16.tflite", "lenet5.float16.tflite.json",
                                            "lenet5.tflite", "lenet5.tflite.json"]
    sizes = {q: (tmp_path / f"lenet5{q}.tflite").stat().st_size for q in ("", ".float16", ".dynamic")}
    assert sizes[".dynamic"] < sizes[".float16"] < sizes[""]  # int8, float16 and float32 weights
    assert "[3/3] tflite dynamic: done" in capsys.readouterr().out
