"""Export a model to SavedModel (TF Serving layout), TFLite and ONNX, each verified in its runtime.

With ``--from PATH.keras`` written by ``keras-cnn train``, the model's preprocessing record supplies the class
names, the TFLite sidecar's pixel transform, the int8 calibration images (its training data) and the
verification images (its test data); every export's top-1 agreement with Keras on the whole test split is
printed and, with ``--report``, added to the JSON report. Files: ``<output>/<name>/<version>/`` (SavedModel),
``<name>.tflite`` (float32), ``<name>.<quantization>.tflite``, ``<name>.onnx`` (float32), ``<name>.int8.onnx``
(with ``--quantization int8``: onnxruntime's static int8), ``<name>.preprocessing.json``.
A model whose weights came from an upstream checkpoint (``keras-cnn convert-weights``) and has no record takes
the checkpoint's preprocessing (mean, std, resize ratio; classes named by index).
"""

import argparse
import functools
import os
import time

import numpy as np

from keras_cnn.app import flags

FORMATS = ("savedmodel", "tflite", "onnx")
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
DEFAULT_PREPROCESSING = {"scale": 1 / 255, "offset": 0.0}  # our data loaders feed 8-bit pixels / 255


def parser():
    p = argparse.ArgumentParser(prog="keras-cnn export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=flags.model_name,
                        help="registered model name to build (random weights unless --weights)")
    source.add_argument("--from", dest="from_path", metavar="PATH.keras", help="a saved .keras model to export")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="model option (repeatable)")
    p.add_argument("--weights", help="with --model: a .weights.h5 file or an upstream checkpoint (.pth, "
                                     ".safetensors, keras.applications .h5) to load")
    p.add_argument("--classes", type=flags.integer(1), default=1000, help="with --model: number of classes")
    p.add_argument("--image-size", type=flags.integer(1), help="with --model: input height and width")
    p.add_argument("--channels", type=flags.integer(1), help="with --model: input channels (default: the model's)")
    p.add_argument("--preprocessing", metavar="JSON",
                   help="preprocessing record (default: the one beside --from, if any)")
    p.add_argument("--format", default="savedmodel,tflite,onnx",
                   help="comma-separated formats among savedmodel, tflite, onnx (default: all)")
    p.add_argument("--quantization", default="none",
                   help="comma-separated TFLite variants among none (float32), float16, dynamic, int8; int8 also "
                        "writes <name>.int8.onnx (onnxruntime static int8, QDQ) beside the float .onnx "
                        "(int8 needs calibration images: --representative or a preprocessing record)")
    p.add_argument("--io-dtype", default="float32", choices=("float32", "int8", "uint8"),
                   help="input/output type of the int8 TFLite file (int8 and uint8 need --quantization int8)")
    p.add_argument("--representative", help="int8 calibration images: digits | tfds:NAME[:SPLIT] | folder:PATH "
                                            "(default: the record's training data)")
    p.add_argument("--samples", type=flags.integer(1), default=300, help="calibration images to use")
    p.add_argument("--min-agreement", type=flags.number(0, 1), metavar="FRACTION",
                   help="top-1 agreement with Keras that a dynamic or int8 .tflite or int8 .onnx file must reach "
                        "on the record's "
                        "test images (up to 200; without them it is only reported), or nothing is written "
                        "(default: 0.98; 0 accepts any drift)")
    p.add_argument("--data-dir", help="tensorflow-datasets data_dir for tfds: sources")
    flags.add_max_pixels(p)
    p.add_argument("--class-names", help="comma-separated class names (default: the record's)")
    p.add_argument("--output", default="saved_models", help="output folder")
    p.add_argument("--name", type=flags.file_name,
                   help="file stem of the exports and their record: <output>/<name>/<version>/, <name>.tflite, "
                        "<name>.onnx, <name>.preprocessing.json (default: the model's name)")
    p.add_argument("--version", type=flags.integer(1), default=1, help="SavedModel version folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing exports (the SavedModel version, .tflite files and their sidecars, .onnx)")
    p.add_argument("--opset", type=flags.integer(13), default=17, help="ONNX opset")
    p.add_argument("--report", metavar="JSON", help="add each export's agreement with Keras to this JSON report")
    return p


def main(argv=None):
    return run(parser().parse_args(argv))


def run(args):
    """Export as ``args`` says; returns the ``keras_cnn.export.ExportResult`` list."""
    formats = _listed("--format", args.format, FORMATS)
    quantizations = _listed("--quantization", args.quantization, QUANTIZATIONS)
    if args.io_dtype != "float32" and not ("tflite" in formats and "int8" in quantizations):
        raise ValueError(f"--io-dtype {args.io_dtype} needs --quantization int8 and tflite in --format (it is the "
                         f"int8 file's input/output type); received --quantization {args.quantization} and "
                         f"--format {args.format}.")
    from keras_cnn.app import preprocessing, sources

    if args.representative:
        args.representative = sources.parse(args.representative, flag="--representative").source  # ~ expanded

    from keras_cnn.app import paths

    paths.check_writable(args.output, "--output")  # before loading and converting
    model = _load_model(args)
    record = preprocessing.find(args.from_path, args.preprocessing, model=model)  # it must fit the model
    if record is None:
        record = _checkpoint_record(args, model)
    if {"tflite", "onnx"} & set(formats) and "int8" in quantizations \
            and not (args.representative or (record and record.data)):
        raise ValueError("--quantization int8 needs --representative digits | tfds:NAME[:SPLIT] | folder:PATH "
                         "(or --from a model with a preprocessing record); received neither.")
    test = _test_images(record, args.max_pixels)
    jobs = _jobs(args, model, record, formats, quantizations, test)
    from keras_cnn import _files

    # One set: staged, then published together under the folder's lock (a concurrent export waits).
    with _files.publish_together(args.output, flag="--overwrite"):
        if not args.overwrite:
            _files.refuse_existing(_targets(args, _stem_name(args, model), formats, quantizations, record),
                                   "--overwrite")
        results = []
        for index, (label, job) in enumerate(jobs, start=1):
            print(f"[{index}/{len(jobs)}] {label}: converting and verifying ...", flush=True)
            start = time.perf_counter()
            results.append(job())
            print(f"[{index}/{len(jobs)}] {label}: done in {time.perf_counter() - start:.1f} s", flush=True)
        if record is not None:
            preprocessing.save(record, os.path.join(args.output, _stem_name(args, model) + preprocessing.SUFFIX))
    print(f"published {len(results)} export(s) together into {args.output}", flush=True)
    agreements = _agreements(model, results, test)
    _summary(model, results, agreements, None if test is None else len(test))
    if args.report:
        _report(args.report, results, agreements, test)
    return results


def _listed(flag, text, allowed):
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values or set(values) - set(allowed):
        raise ValueError(f"{flag} must list some of {', '.join(allowed)}; received {text!r}.")
    return values


def _stem_name(args, model):
    """The exports' file stem: --name, else the model's name."""
    return args.name or model.name


def _targets(args, name, formats, quantizations, record):
    """Every path the export will write but the preprocessing record (rewritten with each export)."""
    from keras_cnn import export

    stem = os.path.join(args.output, name)
    paths = [os.path.join(stem, str(args.version))] if "savedmodel" in formats else []
    paths += [_onnx_path(stem, q) for q in ("none", "int8") if q in quantizations or q == "none"] \
        if "onnx" in formats else []
    for q in quantizations if "tflite" in formats else ():
        paths += export.tflite_files(_tflite_path(stem, q), labels=bool(args.class_names or record))
    return paths


def _tflite_path(stem, quantization):
    """``<stem>.tflite`` (float32, quantization "none") or ``<stem>.<quantization>.tflite``."""
    return f"{stem}{'' if quantization == 'none' else '.' + quantization}.tflite"


def _onnx_path(stem, quantization):
    """``<stem>.onnx`` (float32, always written with the format) or ``<stem>.int8.onnx``."""
    return f"{stem}{'' if quantization == 'none' else '.' + quantization}.onnx"


def _jobs(args, model, record, formats, quantizations, test):
    from keras_cnn import export

    stem = os.path.join(args.output, _stem_name(args, model))
    names = args.class_names.split(",") if args.class_names else list(record.class_names) if record else None
    transform = record.pixel_transform() if record else DEFAULT_PREPROCESSING
    verify = None if test is None else test[:4]
    calibration = functools.cache(lambda: _representative(args, model, record))  # once for TFLite and ONNX
    jobs = []
    for fmt in formats:
        if fmt == "savedmodel":
            jobs.append((fmt, lambda: export.to_saved_model(model, stem, version=args.version,
                                                           overwrite=args.overwrite, verify_data=verify,
                                                           preprocessing=record)))
        elif fmt == "onnx":
            jobs.append((fmt, lambda: export.to_onnx(model, f"{stem}.onnx", opset=args.opset, verify_data=verify,
                                                     overwrite=args.overwrite)))
            if "int8" in quantizations:
                jobs.append(("onnx int8", _onnx_int8_job(args, model, calibration, stem, test)))
        else:
            for q in quantizations:
                # the whole test split: to_tflite compares 4 images, or up to 200 for a quantized file
                jobs.append((f"tflite {q}", _tflite_job(args, model, calibration, stem, q, names, transform,
                                                        test)))
    return jobs


def _tflite_job(args, model, calibration, stem, quantization, names, transform, verify):
    from keras_cnn import export

    def job():
        q = None if quantization == "none" else quantization
        representative = calibration() if q == "int8" else None
        return export.to_tflite(model, _tflite_path(stem, quantization), quantization=q,
                                representative_data=representative, io_dtype=args.io_dtype if q == "int8"
                                else "float32", class_names=names, preprocessing=transform,
                                num_calibration_samples=args.samples, verify_data=verify, overwrite=args.overwrite,
                                min_agreement=export.MIN_AGREEMENT if args.min_agreement is None
                                else args.min_agreement)

    return job


def _onnx_int8_job(args, model, calibration, stem, verify):
    from keras_cnn import export

    def job():
        return export.to_onnx(model, _onnx_path(stem, "int8"), opset=args.opset, quantization="int8",
                              representative_data=calibration(),
                              num_calibration_samples=args.samples, verify_data=verify, overwrite=args.overwrite,
                              min_agreement=export.MIN_AGREEMENT if args.min_agreement is None
                              else args.min_agreement)

    return job


def _load_model(args):
    import keras_cnn
    from keras_cnn.cli import parse_options

    if args.from_path:
        if not (args.from_path.endswith(".keras") and os.path.isfile(args.from_path)):
            raise ValueError(f"--from must be an existing .keras file (keras-cnn train or model.save writes one); "
                             f"received {args.from_path!r}.")
        from keras_cnn.app import runners

        return runners.load_keras(args.from_path)
    entry = keras_cnn.registry.get(args.model)
    height, width, channels = entry.default_input
    return keras_cnn.build(args.model, input_shape=(args.image_size or height, args.image_size or width,
                                                    args.channels or channels),
                           classes=args.classes, weights=args.weights, **parse_options(args.option))


def _checkpoint_record(args, model):
    """The preprocessing of the checkpoint a model's weights came from (None for other models)."""
    from keras_cnn.app import preprocessing, runners

    reason = f"no {preprocessing.record_path(args.from_path)}" if args.from_path \
        else f"no preprocessing record for --model {args.model}"
    return runners.checkpoint_record(model, reason)


def _representative(args, model, record):
    """Calibration images, preprocessed as in training when there is a record."""
    from keras_cnn import data
    from keras_cnn.app import pipeline, sources

    if record is not None and record.data and not args.representative:
        split = sources.load(sources.from_json(record.data), ("train",), size=record.resize,
                             channels=record.channels, limit=args.samples, max_pixels=args.max_pixels)["train"]
        return pipeline.arrays(split, record)[0]
    height, width, channels = model.inputs[0].shape[1:]
    if height is None or width is None:
        raise ValueError("--quantization int8 needs a model with a fixed input size (use --image-size); "
                         f"received input shape {model.inputs[0].shape}.")
    images, _, _ = data.load_images(args.representative, image_size=(height, width), channels=channels,
                                    limit=args.samples, data_dir=args.data_dir, max_pixels=args.max_pixels)
    return record.normalize(images).numpy() if record is not None else images


def _test_images(record, max_pixels=None):
    """The record's test split, preprocessed (None without a record or when its data is not available)."""
    if record is None or not record.data:
        return None
    from keras_cnn.app import pipeline, sources

    try:
        split = sources.load(sources.from_json(record.data), ("test",), size=record.resize,
                             channels=record.channels, max_pixels=max_pixels)["test"]
    except ValueError as error:  # the training data is not on this machine: verify on noise, as without a record
        print(f"note: no test images to verify on ({error})")
        return None
    return pipeline.arrays(split, record)[0]


def _agreements(model, results, test):
    """Per export: agreement with Keras over the whole test split (of the top-1 class, or of a multi-label model's
    label set at its thresholds) and max |difference|."""
    if test is None:
        return {}
    import keras

    from keras_cnn import export
    from keras_cnn.app import runners

    expected = np.concatenate([keras.ops.convert_to_numpy(model(test[i:i + 256], training=False))
                               for i in range(0, len(test), 256)])
    agreements = {}
    for result in results:
        got = runners.load(result.path).predict(test)
        agreements[result.path] = (float(np.mean(export.agreeing(model, expected, got))),
                                   float(np.max(np.abs(got - expected))))
    return agreements


def _summary(model, results, agreements, count):
    """One row per file: verification on the export's own images, then on the whole test split."""
    from keras_cnn import export
    from keras_cnn.app import report

    what = "label sets" if export.decision_thresholds(model) is not None else "top-1"
    headers = ["format", "size MB", "max |diff|", f"{what} agree"]
    if agreements:
        headers += [f"test {what} ({count})", "test max |diff|"]
    rows = []
    for r in results:
        row = [r.format + (f" ({r.quantization})" if r.quantization else ""), f"{r.size_bytes / 1e6:.2f}",
               f"{r.max_abs_diff:.3g}", r.top1_agreement]
        if agreements:
            row += [agreements[r.path][0], f"{agreements[r.path][1]:.3g}"]
        rows.append(row + [f"{r.path}  [{r.runtime}]"])
    print(f"\nExported {model.name} (max |diff| vs Keras and {what} agreement on the verification images):")
    print(report.table(headers + ["file  [runtime]"], rows, left=(0, -1)))


def _report(path, results, agreements, test):
    from keras_cnn.app import report

    exports = {}
    for r in results:
        key = r.format + (f"_{r.quantization}" if r.quantization else "")
        exports[key] = {"path": r.path, "size_bytes": r.size_bytes, "runtime": r.runtime,
                        "max_abs_diff": r.max_abs_diff, "top1_agreement": r.top1_agreement}
        if r.path in agreements:
            exports[key].update(test_images=len(test), test_top1_agreement=agreements[r.path][0],
                                test_max_abs_diff=agreements[r.path][1])
    report.merge(path, {"exports": exports})
    print(f"added the exports to {path}")
