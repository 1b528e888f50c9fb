"""Evaluate a trained model (or an export) exactly: a metrics table, PR/ROC/confusion plots, a JSON report.

The data default to the test split of the data the model was trained on (from its preprocessing record).
``--mode multi-crop`` averages over AlexNet's 10 crops (or a VGG grid) and ``--mode dense`` runs the model fully
convolutionally over whole images at ``--scales`` (keras_cnn.evaluation; both need a .keras model).
A multi-label model (its record says ``task`` multilabel) is scored with its per-class thresholds: accuracy is the
share of images whose whole label set is right, the confusion matrices are one 2x2 per class.
Example: ``keras-cnn evaluate --model saved_models/lenet5.keras``.
"""

import argparse

import numpy as np

from keras_cnn.app import flags

MODES = ("single", "multi-crop", "dense")


def parser():
    p = argparse.ArgumentParser(prog="keras-cnn evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add_model_file(p, ".keras file, SavedModel folder, .tflite or .onnx file to evaluate")
    flags.add_data(p, default=None, split_help=False)
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"),
                   help="which part of --data (the split the model's record describes; default: %(default)s)")
    p.add_argument("--batch-size", type=flags.integer(1), default=64, help="prediction batch size")
    p.add_argument("--mode", default="single", choices=MODES,
                   help="single (centre crop) | multi-crop (--crops / --grid) | dense (FCN over --scales)")
    p.add_argument("--crops", type=int, default=10, choices=(1, 5, 10), help="multi-crop: 10 = corners, centre "
                                                                            "and their flips (AlexNet)")
    p.add_argument("--grid", type=flags.integer(1), help="multi-crop: a GRID x GRID grid of crops and flips (VGG: 5)")
    p.add_argument("--scales", type=flags.int_list, help="dense: shorter sides, e.g. 256,384,512 (default: the "
                                                         "record's resize)")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="dense: skip the horizontal flips")
    p.add_argument("--per-class", action="store_true", help="also print precision, recall, F1, AUCs per class")
    p.add_argument("--plots", help="folder for the PR, ROC and confusion-matrix PNGs (default: <stem>_plots; "
                                   "'none' to skip)")
    p.add_argument("--report", help="JSON report to write or update (default: <stem>.report.json; 'none' to skip)")
    return p


def main(argv=None):
    return run(parser().parse_args(argv))


def run(args):
    """Evaluate; returns the metrics dict (also merged into the report)."""
    from keras_cnn.app import memory, preprocessing, runners

    runner, record = runners.open_model(args.model, args.preprocessing, args.batch_size)
    if args.mode != "single" and runner.model is None:
        raise ValueError(f"--mode {args.mode} needs a .keras model (it runs Keras on crops or as an FCN); "
                         f"received a {runner.kind} file {args.model!r}.")
    # The split is held in memory at the record's resize, then predicted in batches.
    with memory.explained(f"evaluating {memory.shape(record.resize, record.channels)} images in batches of "
                          f"{args.batch_size}", "lower --batch-size, or --limit the images"):
        images, labels, source = _data(args, record)
        scores = runners.probabilities(runner, _predict(args, runner, record, images), record)
    if runner.output == "logits":
        kind = "sigmoid" if record.multilabel else "softmax"
        print(f"note: {args.model} outputs logits; the metrics score their {kind}.")
    values = _metrics(labels, scores, record)
    stem = preprocessing.record_path(args.model)[: -len(preprocessing.SUFFIX)]
    plots = _plots(args, stem, labels, scores, record)
    _print(args, values, labels, scores, record, source)
    report_path = args.report or f"{stem}.report.json"
    if report_path != "none":
        from keras_cnn.app import report

        report.merge(report_path, {**_headline(values), "evaluation": {
            "model": args.model, "kind": runner.kind, "data": source, "split": args.split, "images": len(labels),
            "mode": args.mode, "plots": plots, "per_class": values["per_class"], "task": record.task,
            "thresholds": list(record.decision_thresholds()) if record.multilabel else None}})
        print(f"report: {report_path}" + (f"; plots: {', '.join(plots)}" if plots else ""))
    return values


def _data(args, record):
    """Images in [0, 1] at the record's resize (not cropped: the modes crop differently) and labels."""
    from keras_cnn.app import pipeline, sources

    saved = dict(record.data or {})
    if args.data is None and not saved:
        raise ValueError(f"--data is needed: {args.model!r} has no record of its training data; received none.")
    if args.data is not None and args.data != saved.get("source"):
        saved = {"source": args.data}
    saved.update({k: v for k, v in (("data_dir", args.data_dir), ("download", args.download)) if v})
    source = sources.from_json(saved)
    split = sources.load(source, (args.split,), size=record.resize, channels=record.channels,
                         limit=args.limit, max_pixels=args.max_pixels, class_names=record.class_names)[args.split]
    if split.multilabel != record.multilabel:
        kinds = {True: "multi-label", False: "single-label"}
        raise ValueError(f"--data {source.source!r} is {kinds[split.multilabel]}; the model {args.model!r} is "
                         f"{kinds[record.multilabel]} (its record's task is {record.task!r}).")
    if len(split.class_names) != len(record.class_names):
        raise ValueError(f"--data {source.source!r} has {len(split.class_names)} classes; the model has "
                         f"{len(record.class_names)} ({', '.join(record.class_names[:5])}...).")
    if split.skipped_files:
        from keras_cnn import _images

        print(f"skipped {split.skipped} file(s) of {source.source}: {_images.name_skipped(split.skipped_files)}")
    images, labels = pipeline.arrays(split)
    return images, labels, source.source


def _predict(args, runner, record, images):
    from keras_cnn import evaluation

    if args.mode == "single":
        prepared = np.concatenate([record.prepare(images[i:i + 256]).numpy() for i in range(0, len(images), 256)])
        return runner.predict(prepared)
    normalized = record.normalize(images).numpy()
    if args.mode == "multi-crop":
        return evaluation.multi_crop_predict(runner.model, normalized, crops=args.crops, grid=args.grid,
                                             batch_size=args.batch_size)
    return evaluation.dense_predict(runner.model, normalized, scales=args.scales or record.resize[:1],
                                    flip=args.flip, batch_size=args.batch_size)


def _metrics(labels, scores, record):
    """Exact values from keras_cnn.metrics: headline averages, per-class arrays and the confusion matrix."""
    import warnings

    from keras_cnn import metrics

    task = _task(record)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.UndefinedMetricWarning)  # classes absent from a small split
        summary = metrics.classification_summary(labels, scores, **task)
        per_class = {
            "precision": metrics.precision(labels, scores, average=None, **task),
            "recall": metrics.recall(labels, scores, average=None, **task),
            "f1": metrics.f1_score(labels, scores, average=None, **task),
            "pr_auc": metrics.pr_auc(labels, scores, average=None, task=task["task"]),  # rankings: no threshold
            "roc_auc": metrics.roc_auc(labels, scores, average=None, task=task["task"]),
        }
        summary.update(accuracy=metrics.accuracy(labels, scores, **task),
                       precision_macro=metrics.precision(labels, scores, **task),
                       recall_macro=metrics.recall(labels, scores, **task))
    support = labels.sum(axis=0) if record.multilabel else np.bincount(labels, minlength=len(record.class_names))
    return {**summary, "per_class": {name: {**{k: float(v[i]) for k, v in per_class.items()},
                                            "support": int(support[i])}
                                     for i, name in enumerate(record.class_names)},
            "confusion_matrix": metrics.confusion_matrix(labels, scores, **task).tolist()}


def _task(record):
    """The metrics' task arguments: multiclass, or multilabel at the record's per-class thresholds."""
    if not record.multilabel:
        return {"task": "multiclass"}
    return {"task": "multilabel", "threshold": np.asarray(record.decision_thresholds())}


def _headline(values):
    from keras_cnn.app import report

    return {key: values[key] for key in report.HEADLINE} | {"confusion_matrix": values["confusion_matrix"]}


def _plots(args, stem, labels, scores, record):
    import warnings

    from keras_cnn import metrics
    from keras_cnn.callbacks import save_plots

    folder = args.plots or f"{stem}_plots"
    if folder == "none":
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.UndefinedMetricWarning)
        return save_plots(labels, scores, folder, tag=args.split, class_names=list(record.class_names),
                          **_task(record))


def _print(args, values, labels, scores, record, source):
    from keras_cnn.app import report

    task = ", multi-label at per-class thresholds" if record.multilabel else ""
    print(f"\n{args.model} on {source} ({args.split}, {len(labels)} images, {args.mode} evaluation{task}):")
    print(report.table(("metric", "value"), [(key, values[key]) for key in report.HEADLINE]))
    if args.per_class:
        columns = ("precision", "recall", "f1", "pr_auc", "roc_auc", "support")
        print()
        print(report.table(("class", *columns), [(name, *(v[c] for c in columns))
                                                  for name, v in values["per_class"].items()]))
    print(flush=True)
