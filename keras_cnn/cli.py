"""The ``keras-cnn`` command line: ``keras-cnn export ...`` (``apps/export.py`` is the same command)."""

import argparse
import ast
import os
import sys
import time

FORMATS = ("savedmodel", "tflite", "onnx")
DEFAULT_PREPROCESSING = {"scale": 1 / 255, "offset": 0.0}  # our data loaders feed 8-bit pixels / 255


def parse_options(pairs):
    """``["pool=max", "batch_norm=True"]`` -> ``{"pool": "max", "batch_norm": True}`` (values as Python literals)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--option must be KEY=VALUE; received {pair!r}")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def export_parser(parser=None):
    """Arguments of ``keras-cnn export``."""
    parser = parser or argparse.ArgumentParser(prog="keras-cnn export", description=_export.__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="registered model name to build (random weights unless --weights)")
    source.add_argument("--from", dest="from_path", metavar="PATH.keras", help="a saved .keras model to export")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="model option (repeatable)")
    parser.add_argument("--weights", help="with --model: a .weights.h5 file to load")
    parser.add_argument("--classes", type=int, default=1000, help="with --model: number of classes")
    parser.add_argument("--image-size", type=int, help="with --model: input height and width (default: the model's)")
    parser.add_argument("--channels", type=int, help="with --model: input channels (default: the model's)")
    parser.add_argument("--format", default="savedmodel,tflite,onnx",
                        help="comma-separated formats among savedmodel, tflite, onnx")
    parser.add_argument("--quantization", default="none", choices=("none", "float16", "dynamic", "int8"),
                        help="TFLite quantization (int8 needs --representative)")
    parser.add_argument("--io-dtype", default="float32", choices=("float32", "int8", "uint8"),
                        help="int8 TFLite input/output type")
    parser.add_argument("--representative", help="int8 calibration images: digits | tfds:NAME[:SPLIT] | folder:PATH")
    parser.add_argument("--samples", type=int, default=300, help="calibration images to use")
    parser.add_argument("--data-dir", help="tensorflow-datasets data_dir for tfds: sources")
    parser.add_argument("--class-names", help="comma-separated class names for the TFLite sidecar and labels file")
    parser.add_argument("--output", default="saved_models", help="output folder")
    parser.add_argument("--version", type=int, default=1, help="SavedModel version folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing SavedModel version")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset")
    return parser


def _export(args):
    """Export a model to SavedModel (TF Serving layout), TFLite and ONNX, each verified in its runtime."""
    from keras_cnn import export

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise SystemExit(f"--format must list some of {', '.join(FORMATS)}; received {args.format!r}")
    model = _load_model(args)
    quantization = None if args.quantization == "none" else args.quantization
    representative = _representative(args, model) if quantization == "int8" else None
    class_names = args.class_names.split(",") if args.class_names else None
    stem = os.path.join(args.output, model.name)
    jobs = {
        "savedmodel": lambda: export.to_saved_model(model, stem, version=args.version, overwrite=args.overwrite),
        "tflite": lambda: export.to_tflite(
            model, f"{stem}{'_' + quantization if quantization else ''}.tflite", quantization=quantization,
            representative_data=representative, io_dtype=args.io_dtype, class_names=class_names,
            preprocessing=DEFAULT_PREPROCESSING, num_calibration_samples=args.samples),
        "onnx": lambda: export.to_onnx(model, f"{stem}.onnx", opset=args.opset),
    }
    results = []
    for index, fmt in enumerate(formats, start=1):
        print(f"[{index}/{len(formats)}] {fmt}: converting and verifying ...", flush=True)
        start = time.perf_counter()
        results.append(jobs[fmt]())
        print(f"[{index}/{len(formats)}] {fmt}: done in {time.perf_counter() - start:.1f} s", flush=True)
    _summary(model.name, results)
    return results


def _load_model(args):
    import keras

    import keras_cnn

    if args.from_path:
        return keras.saving.load_model(args.from_path, safe_mode=True)
    entry = keras_cnn.registry.get(args.model)
    height, width, channels = entry.default_input
    size = args.image_size or height
    return keras_cnn.build(args.model, input_shape=(size, args.image_size or width, args.channels or channels),
                           classes=args.classes, weights=args.weights, **parse_options(args.option))


def _representative(args, model):
    from keras_cnn import data

    if not args.representative:
        raise SystemExit("--quantization int8 needs --representative digits | tfds:NAME[:SPLIT] | folder:PATH")
    height, width, channels = model.inputs[0].shape[1:]
    if height is None or width is None:
        raise SystemExit("--quantization int8 needs a model with a fixed input size (use --image-size)")
    images, _, _ = data.load_images(args.representative, image_size=(height, width), channels=channels,
                                    limit=args.samples, data_dir=args.data_dir)
    return images


def _summary(name, results):
    print(f"\nExported {name}:")
    print(f"  {'format':<11} {'size':>10}  {'max |diff| vs Keras':>20}  {'top-1 agree':>11}  file")
    for r in results:
        label = r.format + (f" ({r.quantization})" if r.quantization else "")
        print(f"  {label:<11} {r.size_bytes / 1e6:>8.2f}MB  {r.max_abs_diff:>20.3g}  {r.top1_agreement:>11.2f}  "
              f"{r.path}  [{r.runtime}]")


COMMANDS = {"export": (export_parser, _export)}


def main(argv=None):
    """Entry point of ``keras-cnn``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        raise SystemExit(f"usage: keras-cnn {{{','.join(COMMANDS)}}} [--help]; received {argv[:1] or 'nothing'}")
    make_parser, run = COMMANDS[argv[0]]
    run(make_parser().parse_args(argv[1:]))
    return 0


if __name__ == "__main__":
    main()
