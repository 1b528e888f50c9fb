"""Top-k classes for image files or folders, from a .keras model or an export (SavedModel, .tflite, .onnx).

Images are preprocessed by the model's record (the same resize, crop and normalisation as in training);
unreadable files are reported and skipped. A multi-label model (its record says ``task`` multilabel) shows every
label whose probability reaches its class's threshold (chosen on the validation split by keras-cnn train), most
probable first, instead of the top k; an image may have none. Example:
``keras-cnn predict --model saved_models/lenet5.int8.tflite --top-k 3 my_digits/``.
"""

import argparse
import json
import os

import numpy as np

from keras_cnn.app import flags


def parser():
    p = argparse.ArgumentParser(prog="keras-cnn predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add_model_file(p, ".keras file, SavedModel folder (or its TF Serving base folder), .tflite or .onnx")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER",
                   help="image files, or folders whose image files (recursively) are all predicted")
    p.add_argument("--top-k", type=flags.integer(1), default=5,
                   help="classes shown per image (default: 5; a multi-label model shows every label above its "
                        "threshold)")
    p.add_argument("--batch-size", type=flags.integer(1), default=64, help="images per prediction batch")
    p.add_argument("--json", metavar="PATH", help="also write the predictions to this JSON file")
    flags.add_max_pixels(p)
    return p


def main(argv=None):
    return run(parser().parse_args(argv))


def run(args):
    """Predict; returns ``{file: [(class name, probability), ...]}``, most probable first: the top k, or for a
    multi-label model every label at or above its threshold."""
    from keras_cnn.app import memory, runners

    files = _files(args.inputs)
    runner, record = runners.open_model(args.model, args.preprocessing, args.batch_size)
    top_k = min(args.top_k, len(record.class_names))
    if runner.output == "logits":
        kind = "sigmoid" if record.multilabel else "softmax"
        print(f"note: {args.model} outputs logits; the probabilities shown are their {kind} ({kind} of logits).")
    if record.multilabel:
        print(f"multi-label model: each label whose independent probability reaches its class's threshold "
              f"({'chosen on validation' if record.thresholds else 'none recorded: 0.5'}; "
              f"{_thresholds_text(record)})")
    results, unreadable = {}, []
    with memory.explained(f"predicting batches of {args.batch_size} images of "
                          f"{memory.shape(record.input_size, record.channels)}", "lower --batch-size"):
        for start in range(0, len(files), args.batch_size):
            batch, names = _read(files[start:start + args.batch_size], record, unreadable, args.max_pixels)
            if names:
                for name, scores in zip(names, runners.probabilities(runner, runner.predict(batch), record)):
                    results[name] = [(record.class_names[i], float(scores[i])) for i in _shown(scores, record, top_k)]
    _print(results, unreadable)
    if args.json:
        from keras_cnn._files import write_text

        write_text(args.json, json.dumps({"model": args.model, "predictions": results, "unreadable": dict(unreadable)},
                                         indent=2))
    return results


def _shown(scores, record, top_k):
    """The class indices shown, most probable first: the top k, or a multi-label model's labels that reach their
    thresholds."""
    order = np.argsort(-scores, kind="stable")
    if not record.multilabel:
        return order[:top_k]
    limits = np.asarray(record.decision_thresholds())
    return [i for i in order if scores[i] >= limits[i]]


def _thresholds_text(record):
    return ", ".join(f"{name} {limit:.3f}" for name, limit in zip(record.class_names, record.decision_thresholds()))


def _files(inputs):
    """The files to predict: each file named, and each folder's images as a folder source lists them
    (``keras_cnn._images.list_images``: recursive, image extensions only, hidden files and folders skipped)."""
    from keras_cnn import _images

    files = []
    for path in inputs:
        if os.path.isdir(path):
            files += _images.list_images(path)
        elif os.path.isfile(path):
            files.append(path)  # named by the user: read whatever its name, skipped with a reason if not an image
        else:
            raise ValueError(f"IMAGE_OR_FOLDER must be existing files or folders; received {path!r}.")
    if not files:
        raise ValueError(f"IMAGE_OR_FOLDER holds no image files ({', '.join(_images.IMAGE_EXTENSIONS)}, "
                         f"not hidden); received {list(inputs)}.")
    return files


def _read(files, record, unreadable, max_pixels=None):
    """Decoded, preprocessed images of ``files`` that are readable images; the others go to ``unreadable`` as
    ``keras_cnn._images.Skipped`` (file, reason): unreadable, corrupt, or over ``max_pixels`` (default
    ``keras_cnn._images.MAX_PIXELS``), which is refused from its header, never decoded."""
    from keras_cnn import _images

    images, names = [], []
    for file in files:
        image, problem = _images.read_image(file, record.channels, record.resize, max_pixels=max_pixels)
        if image is None:
            unreadable.append(_images.Skipped(file, problem))
            continue
        images.append(record.prepare(image).numpy())
        names.append(file)
    return (np.stack(images) if images else None), names


def _print(results, unreadable):
    from keras_cnn import _images

    for name, top in results.items():
        print(f"{name}: " + ("  ".join(f"{label} {p:.4f}" for label, p in top) or "(no label)"))
    if unreadable:
        print(f"skipped {len(unreadable)} unreadable file(s): {_images.name_skipped(unreadable)}")
    print(f"{len(results)} image(s) predicted", flush=True)
