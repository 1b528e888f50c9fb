"""The keras-cnn command line as a new user meets it: --help, help COMMAND, --version, unknown commands, list,
export --name, folder:~, --io-dtype without int8, predict on an empty folder, help text as plain text."""

import json
import os
import subprocess
import sys

import pytest

import keras_cnn
from keras_cnn import cli
from keras_cnn.app import preprocessing, sources

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_help_lists_every_command_with_a_line_and_exits_0(flag, capsys):
    assert cli.main([flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: keras-cnn COMMAND")
    for name, summary in cli.SUMMARIES.items():
        assert f"  {name} " in out and summary in out
    assert "--version" in out


def test_help_command_prints_that_commands_flags(capsys):
    assert cli.main(["help", "export"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: keras-cnn export") and "--name NAME" in out


def test_version_prints_the_package_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"keras-cnn {keras_cnn.__version__}\n"


@pytest.mark.parametrize("argv, fragment", [
    (["trian"], "received 'trian'; closest: train"),
    (["--model", "lenet5"], "received '--model'"),
    ([], "a command is needed; one of train, evaluate"),
    (["help", "exprt"], "help COMMAND must be one of train"),
])
def test_an_unknown_command_exits_2_with_the_usage_and_closest_names(argv, fragment, capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(argv)
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: keras-cnn COMMAND") and fragment in err and "Traceback" not in err


def test_every_command_has_an_apps_wrapper_and_a_summary():
    assert set(cli.COMMANDS) == set(cli.SUMMARIES)
    assert all(os.path.isfile(os.path.join(ROOT, "apps", f"{c.replace('-', '_')}.py")) for c in cli.COMMANDS)


@pytest.mark.parametrize("name", cli.COMMANDS)
def test_help_text_has_no_restructuredtext_markup(name, capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main([name, "--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out and ":mod:`" not in out and ":func:`" not in out and ":class:`" not in out


def test_help_and_version_need_no_tensorflow():
    """cli.py imports only the standard library: loaded on its own (as an entry point outside the package
    would), --help and --version import neither TensorFlow nor Keras."""
    path = os.path.join(ROOT, "keras_cnn", "cli.py")
    script = ("import importlib.util, sys\n"
              f"spec = importlib.util.spec_from_file_location('cli_alone', {path!r})\n"
              "cli = importlib.util.module_from_spec(spec); spec.loader.exec_module(cli)\n"
              "assert cli.main(['--help']) == 0 and cli.main(['--version']) == 0\n"
              "print(sorted(m for m in ('tensorflow', 'keras', 'keras_cnn') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------- list


def test_list_prints_names_families_and_default_inputs(capsys):
    assert cli.main(["list", "lenet*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "family", "input"]
    assert lines[2].split() == ["lenet5", "lenet", "32x32x1"] and lines[-1] == "1 model(s)"


def test_list_parameters_are_the_built_models_trainable_count(capsys):
    rows = cli.command("list").run(cli.parser("list").parse_args(["lenet5", "--parameters"]))
    model = keras_cnn.build("lenet5")
    expected = sum(int(w.numpy().size) for w in model.trainable_weights)
    assert rows == [{"name": "lenet5", "family": "lenet", "input": "32x32x1", "parameters": expected}]
    assert f"{expected:,}" in capsys.readouterr().out


def test_list_matches_like_list_models():
    rows = cli.command("list").run(cli.parser("list").parse_args(["VGG1?_bn"]))
    assert [r["name"] for r in rows] == keras_cnn.list_models("vgg1?_bn")


@pytest.mark.parametrize("pattern, fragment", [("resnet", "'resnet*' matches"), ("lenett", "closest: lenet5")])
def test_list_pattern_matching_nothing_is_one_line_naming_it(pattern, fragment):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["list", pattern])
    assert excinfo.value.code.startswith("keras-cnn list: error: PATTERN must match a registered model name")
    assert f"received {pattern!r}" in excinfo.value.code and fragment in excinfo.value.code


# ---------------------------------------------------------------- export --name, --io-dtype


def test_export_name_is_the_stem_of_every_file_and_the_record(tmp_path):
    keras_cnn.build("lenet5", classes=3, name="m").save(tmp_path / "m.keras")
    preprocessing.save(preprocessing.create((32, 32, 1), ["a", "b", "c"]), tmp_path / "m.preprocessing.json")
    out = tmp_path / "out"
    assert cli.main(["export", "--from", str(tmp_path / "m.keras"), "--format", "savedmodel,tflite,onnx",
                     "--name", "digits_v2", "--output", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["digits_v2", "digits_v2.labels.txt", "digits_v2.onnx",
                                       "digits_v2.preprocessing.json", "digits_v2.tflite", "digits_v2.tflite.json"]
    assert os.listdir(out / "digits_v2") == ["1"]
    assert preprocessing.record_path(out / "digits_v2.tflite") == str(out / "digits_v2.preprocessing.json")
    assert json.loads((out / "digits_v2.preprocessing.json").read_text())["class_names"] == ["a", "b", "c"]


@pytest.mark.parametrize("name", ["a/b", "", "..", "."])
def test_export_name_must_be_a_file_name(name, tmp_path, capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["export", "--model", "lenet5", "--name", name, "--output", str(tmp_path)])
    assert excinfo.value.code == 2
    assert "argument --name: must be a file name without folders" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv", [["--io-dtype", "uint8"], ["--io-dtype", "int8", "--quantization", "dynamic"],
                                  ["--io-dtype", "uint8", "--quantization", "int8", "--format", "onnx"]])
def test_io_dtype_without_int8_tflite_is_an_error_naming_both_flags(argv, tmp_path):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["export", "--model", "lenet5", *argv, "--output", str(tmp_path)])
    message = excinfo.value.code
    assert message.startswith("keras-cnn export: error: --io-dtype") and "needs --quantization int8" in message
    assert isinstance(excinfo.value.__cause__, ValueError) and os.listdir(tmp_path) == []


# ---------------------------------------------------------------- folder:~, predict on an empty folder


def test_folder_source_expands_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    source = sources.parse("folder:~/images")
    assert source.source == f"folder:{tmp_path / 'images'}" and source.parsed.location == str(tmp_path / "images")
    assert sources.parse("folder:images").source == "folder:images"  # relative paths stay as given


def test_export_representative_folder_expands_the_home_folder(tmp_path, monkeypatch):
    from keras_cnn import data

    monkeypatch.setenv("HOME", str(tmp_path))
    seen = []

    def load_images(source, **kwargs):
        seen.append(source)
        raise ValueError("stop here")

    monkeypatch.setattr(data, "load_images", load_images)
    with pytest.raises(SystemExit):
        cli.main(["export", "--model", "lenet5", "--classes", "10", "--format", "tflite", "--quantization", "int8",
                  "--representative", "folder:~/calibration", "--output", str(tmp_path / "out")])
    assert seen == [f"folder:{tmp_path / 'calibration'}"]


def test_predict_on_a_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no image")
    keras_cnn.build("lenet5", classes=3).save(tmp_path / "m.keras")
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["predict", "--model", str(tmp_path / "m.keras"), str(tmp_path / "empty")])
    assert excinfo.value.code.startswith("keras-cnn predict: error: IMAGE_OR_FOLDER holds no image files")
