"""`import keras_cnn` and the command line's help, list and argument errors load no TensorFlow (issue #19: they
must answer in under 2 s; TensorFlow alone takes 5-10 s to import), yet the package behaves as when it imported
everything: public names, submodules, and Keras finding keras_cnn's classes in a .keras file."""

import os
import subprocess
import sys

import pytest

import keras_cnn
from keras_cnn import catalog, registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code):
    """Run ``code`` in a fresh interpreter from the repository root; its stdout (stripped)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


HEAVY = "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["export", "--help"], ["list", "resnet*"],
                                  ["list"], ["help", "predict"], ["--version"]])
def test_help_list_and_version_import_no_tensorflow(argv):
    code = (f"import sys\nfrom keras_cnn import cli\ntry:\n    cli.main({argv!r})\nexcept SystemExit as e:\n"
            f"    assert e.code in (0, None), e.code\n{HEAVY}")
    assert _python(code).splitlines()[-1] == "[]"


@pytest.mark.parametrize("argv", [["train", "--model", "resnt50"], ["profile", "--model", "vgg"],
                                  ["export", "--model", "lenet", "--format", "onnx"],
                                  ["convert-weights", "--model", "resnet5", "--from", "x.pth"]])
def test_an_unknown_model_name_is_refused_before_tensorflow_loads(argv):
    code = (f"import sys\nfrom keras_cnn import cli\ntry:\n    cli.main({argv!r})\nexcept SystemExit as e:\n"
            f"    print(e.code)\n{HEAVY}")
    out = _python(code).splitlines()
    assert out == ["2", "[]"]


def test_unknown_model_message_names_the_flag_and_the_closest_names(capsys):
    from keras_cnn import cli

    with pytest.raises(SystemExit):
        cli.main(["train", "--model", "resnt50"])
    err = capsys.readouterr().err
    assert "argument --model: not a registered model name" in err and "closest: resnet50" in err


def test_import_keras_cnn_imports_no_tensorflow():
    assert _python(f"import sys, keras_cnn\n{HEAVY}") == "[]"


def test_public_names_and_submodules_load_on_first_use():
    out = _python("import keras_cnn\nm = keras_cnn.build('lenet5')\n"
                  "print(type(m).__name__, keras_cnn.export.__name__, callable(keras_cnn.to_fcn),"
                  " 'lenet5' in keras_cnn.list_models())")
    assert out.splitlines()[-1] == "CNNModel keras_cnn.export True True"
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        keras_cnn.not_a_name  # noqa: B018


def test_all_names_resolve():
    for name in keras_cnn.__all__:
        assert getattr(keras_cnn, name) is not None, name


@pytest.mark.parametrize("order", ["import keras_cnn\nimport keras", "import keras\nimport keras_cnn"])
def test_keras_finds_keras_cnn_classes_whichever_is_imported_first(order, tmp_path):
    """A .keras file of a CNNModel with a custom layer (LRN in AlexNet) loads with plain Keras after
    ``import keras_cnn``, in either import order, with safe_mode on."""
    path = tmp_path / "m.keras"
    _python(f"import keras_cnn\nkeras_cnn.build('alexnet', classes=3).save({str(path)!r})")
    out = _python(f"{order}\nm = keras.saving.load_model({str(path)!r}, safe_mode=True)\n"
                  "print(type(m).__name__, sorted({type(l).__name__ for l in m.layers} & "
                  "{'LocalResponseNormalization'}))")
    assert out.splitlines()[-1] == "CNNModel ['LocalResponseNormalization']"


def test_catalog_equals_the_registry():
    """keras_cnn/_catalog_table.py is generated (python -m keras_cnn.catalog --write); regenerate on a change."""
    assert catalog.source(catalog.table_from_registry()) == open(catalog.__file__.replace(
        "catalog.py", "_catalog_table.py"), encoding="utf-8").read()
    assert catalog.names() == registry.list_models()
    assert catalog.names("vgg1?_bn") == registry.list_models("vgg1?_bn")
