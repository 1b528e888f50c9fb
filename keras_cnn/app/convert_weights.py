"""Convert a torchvision, timm or keras.applications checkpoint into keras_cnn files.

Builds ``keras_cnn.build(MODEL, weights=FILE)`` (the checkpoint's form is recognised from its tensor names, the
options it needs are set, every tensor is converted by name and checked; nothing is downloaded) and writes, each
file whole and none replaced without ``--overwrite``:

- ``<output>/<name>.weights.h5``: the weights, for ``keras_cnn.build(MODEL, weights=...)`` with the same options;
- ``<output>/<name>.keras``: the model with its build config and checkpoint record, for predict, evaluate,
  export and further training;
- ``<output>/<name>.preprocessing.json``: the checkpoint's preprocessing (resize, centre crop, mean and std) and
  the class names, by index ("0", "1", ...): checkpoints carry no label names; edit the file to name them.

Example: ``keras-cnn convert-weights --model resnet50 --from resnet50-11ad3fa6.pth --output converted``.
"""

import argparse
import dataclasses
import os

from keras_cnn.app import flags


@dataclasses.dataclass(frozen=True)
class Outputs:
    """The three files of one conversion: ``<folder>/<stem>.weights.h5``, ``.keras``, ``.preprocessing.json``."""

    weights: str
    model: str
    record: str

    @classmethod
    def of(cls, folder, stem):
        from keras_cnn.app import preprocessing

        path = os.path.join(folder, stem)
        return cls(f"{path}.weights.h5", f"{path}.keras", f"{path}{preprocessing.SUFFIX}")

    def all(self):
        return [self.weights, self.model, self.record]


def parser():
    p = argparse.ArgumentParser(prog="keras-cnn convert-weights", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=flags.model_name, required=True,
                   help="registered model name the checkpoint holds (keras_cnn.list_models())")
    p.add_argument("--from", dest="from_path", required=True, metavar="FILE",
                   help="checkpoint file: PyTorch .pth/.pt/.bin (read without torch), .safetensors, "
                        "keras.applications .h5, .npz")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for the three files (created if needed)")
    p.add_argument("--source", metavar="SOURCE",
                   help="timm | torchvision | keras.applications | an upstream key such as timm:resnet50 (default: "
                        "recognised from the tensor names; keras_cnn.weights.upstreams() lists them)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="build argument or model option, repeatable (e.g. classes=10 for a new classifier, "
                        "include_top=False for the trunk); the options the checkpoint needs are set for you")
    p.add_argument("--name", metavar="STEM", help="name of the model and stem of its files (default: the model name)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return p


def main(argv=None):
    return run(parser().parse_args(argv))


def run(args):
    """Convert as ``args`` says; returns ``{"upstream", "tensors", "weights", "parameters", "new_classifier",
    "files"}``."""
    from keras_cnn import _files, registry

    _check_source(args.source)
    stem = _stem(args.name or registry.get(args.model).name)
    outputs = Outputs.of(args.output, stem)
    from keras_cnn.app import paths

    paths.check_writable(args.output, "--output", outputs.all())
    if not args.overwrite:
        _files.refuse_existing(outputs.all(), "--overwrite")  # before the slow part
    model, upstream, described = _convert(args, stem)
    record = _record(model, stem)
    _write(model, record, outputs, args.overwrite)
    tensors, weights, fresh = _counted(model, upstream)
    summary = {"upstream": upstream.key, "tensors": tensors, "weights": weights,
               "parameters": int(model.count_params()), "new_classifier": fresh, "files": outputs.all()}
    _print(summary, described, model, record, upstream.options)
    return summary


def _check_source(source):
    from keras_cnn.weights._catalog import SOURCES

    if source is None or source in SOURCES:
        return
    kind, sep, name = source.partition(":")
    if not (sep and kind in SOURCES and name):
        raise ValueError(f"--source must be one of {', '.join(SOURCES)} or an upstream key SOURCE:NAME (e.g. "
                         f"timm:resnet50); received {source!r}.")


def _stem(name):
    if not name or os.sep in name or (os.altsep and os.altsep in name) or name.startswith("."):
        raise ValueError(f"--name must be a file stem without a folder or a leading dot (e.g. resnet50_tv); "
                         f"received {name!r}.")
    return name


def _convert(args, stem):
    """``(model, upstream, checkpoint description)``: the checkpoint is read once, recognised (the number of
    classes of its classifier is the default ``classes``) and converted by ``keras_cnn.build``."""
    import keras_cnn
    from keras_cnn.cli import parse_options
    from keras_cnn.weights import _convert, read_checkpoint

    entry = keras_cnn.registry.get(args.model)
    options = parse_options(args.option)
    checkpoint = read_checkpoint(args.from_path)
    upstream = _convert.detect(entry.name, checkpoint, args.source)
    options.setdefault("classes", upstream.classes)
    model = keras_cnn.build(entry.name, weights=checkpoint, weights_source=upstream.key, name=stem, **options)
    return model, upstream, checkpoint.describe()


def _record(model, stem):
    from keras_cnn.app import preprocessing
    from keras_cnn.model import model_config
    from keras_cnn.weights import checkpoint_info

    classes = model_config(model)["classes"] if model_config(model)["include_top"] else 0
    return preprocessing.from_checkpoint(checkpoint_info(model), tuple(model.input_shape[1:]),
                                         [str(i) for i in range(classes)], model=stem)


def _write(model, record, outputs, overwrite):
    from keras_cnn import _files
    from keras_cnn.app import preprocessing

    with _files.publish_together(os.path.dirname(os.path.abspath(outputs.model)), flag="--overwrite"):  # one set
        _files.write_whole(outputs.weights, model.save_weights, overwrite=overwrite)
        _files.write_whole(outputs.model, model.save, overwrite=overwrite)
        preprocessing.save(record, outputs.record, overwrite=overwrite)


def _counted(model, upstream):
    """``(checkpoint tensors used, keras_cnn weights given a value, whether the classifier starts fresh)``: a
    classifier for other ``classes`` takes no tensor."""
    from keras_cnn import _weights
    from keras_cnn.model import classifier_keys, model_config

    config = model_config(model)
    fresh = config["include_top"] and config["classes"] != upstream.classes
    shapes = _weights.canonical_shapes(model)
    left = classifier_keys(shapes) if fresh else set()
    keys = [k for k in shapes if k not in left]
    names = {name for source in upstream.mapping(keys).values() if source is not None for name in source.names}
    return len(names), len(keys), fresh


def _print(summary, described, model, record, options):
    fresh = f" (a new {len(record.class_names)}-class classifier)" if summary["new_classifier"] else ""
    needs = f" built with {', '.join(f'{k}={v!r}' for k, v in options.items())}," if options else ""
    print(f"converted {summary['upstream']} {described}: {summary['tensors']} tensors into {summary['weights']} "
          f"weights of {model.name}{fresh},{needs} {summary['parameters']:,} parameters; wrote "
          f"{', '.join(summary['files'])}")
    names = record.class_names
    if names:
        print(f"note: checkpoints carry no class names: {summary['files'][2]} names the {len(names)} classes by "
              f"index (\"{names[0]}\"..\"{names[-1]}\"); edit its class_names to name them.", flush=True)
