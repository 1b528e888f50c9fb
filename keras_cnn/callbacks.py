"""Exact classification metrics at epoch end, where other callbacks can act on them.

``keras.metrics.AUC`` approximates the curve with 200 thresholds and
accumulates over batches; ``ClassificationMetrics`` predicts the whole
validation set once per evaluated epoch and computes the values exactly with
``keras_cnn.metrics``.

Its plots are drawn by ``keras_cnn._plots`` (``save_plots``, public here) and its TensorBoard scalars written by
``keras_cnn._tensorboard``.
"""

import math
import os
import warnings

import keras
import numpy as np

from . import _validate
from . import metrics as _metrics
from ._plots import MAX_PLOT_CLASSES, save_plots  # noqa: F401  (public here: keras_cnn.callbacks.save_plots)
from ._tensorboard import ScalarWriter


MAIN_OUTPUT = "predictions"  # keras_cnn's name of the main classifier's output (auxiliary heads: aux1_predictions...)


def _named(values, names):
    """``values`` (a dict, or a list/tuple in ``names``' order) as a dict by output name; None for one array."""
    if isinstance(values, dict):
        return dict(values)
    if isinstance(values, (list, tuple)) and len(values) == len(names) > 1 and all(np.ndim(v) for v in values):
        return dict(zip(names, values))
    return None


def _warn_diverged(consequence):
    warnings.warn(f"ClassificationMetrics: the model predicts NaN or infinite scores (training diverged); "
                  f"{consequence}", RuntimeWarning, stacklevel=3)


class ClassificationMetrics(keras.callbacks.Callback):
    """Adds exact PR-AUC, ROC-AUC and F1 on ``validation_data`` to the epoch logs.

    Keys (with the default ``prefix="val_"``): binary -> ``val_pr_auc``,
    ``val_roc_auc``, ``val_f1``; multiclass / multilabel -> ``val_pr_auc_macro``,
    ``val_pr_auc_micro``, ``val_roc_auc_macro``, ``val_roc_auc_micro``,
    ``val_f1_macro``, ``val_f1_micro``, plus ``val_<metric>_<class name>`` per
    class with ``per_class=True``.

    Keras runs callbacks in list order and each reads the shared ``logs``, so
    put this callback *before* any that monitor its keys (EarlyStopping,
    ModelCheckpoint, ReduceLROnPlateau, CSVLogger, TensorBoard).  History and
    the progress bar always come after it.

    Args:
        validation_data: ``(x, y)`` arrays, or a re-iterable dataset (e.g.
            ``tf.data.Dataset``) yielding ``(x, y)`` batches.  A dataset is
            read once per evaluation and each batch's predictions are paired
            with its own labels, so reshuffling is harmless.  For multiclass,
            ``y`` may be class indices or one-hot rows (reduced with arg-max).
        task: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        prefix: prepended to every key.
        every_n_epochs: compute on epochs ``n, 2n, ...`` (1-based) only; the
            other epochs carry no keys, like Keras's ``validation_freq``.
        class_names: names for per-class keys and plot labels (K names; two,
            negative then positive, for binary).
        log_dir: if set, the values are also written there as TensorBoard
            scalars (step = 0-based epoch).
        plot_dir: if set, PNG plots of the PR and ROC curves (per class and
            micro) and the confusion matrix are written there at the end of
            training (``final_*.png``) and, with ``plot_every_n_epochs``,
            every that many epochs (``epoch_005_*.png``).
        threshold: decision threshold for binary / multilabel F1.
        per_class: also log one key per class and metric.
        from_logits: the model outputs logits; multiclass scores go through
            a float64 softmax, binary / multilabel ones are ranked as logits
            (a sigmoid would tie saturated scores) with the threshold mapped
            to logit space.
        batch_size: passed to ``model.predict`` for array data.
        output: the output to score in a model with several (GoogLeNet / Inception v3 with ``aux_logits=True``);
            default ``"predictions"``, keras_cnn's main classifier. Labels may be one array for every output, or
            a dict / list of per-output targets as ``model.fit`` takes them (the chosen output's are used).
    """

    def __init__(
        self,
        validation_data,
        task="multiclass",
        prefix="val_",
        every_n_epochs=1,
        class_names=None,
        log_dir=None,
        plot_dir=None,
        *,
        threshold=0.5,
        per_class=False,
        from_logits=False,
        batch_size=None,
        plot_every_n_epochs=None,
        output=None,
    ):
        super().__init__()
        if output is not None and not isinstance(output, str):
            raise TypeError(f"output must be None or an output name; received {output!r}")
        _validate.check_choice("task", task, _metrics.TASKS)
        _validate.check_int("every_n_epochs", every_n_epochs, minimum=1)
        for name, value in (("plot_every_n_epochs", plot_every_n_epochs), ("batch_size", batch_size)):
            if value is not None:
                _validate.check_int(name, value, minimum=1)
        _validate.check_bool("per_class", per_class)
        _validate.check_bool("from_logits", from_logits)
        _metrics._check_real("threshold", threshold)
        if from_logits and not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1) with from_logits=True; received {threshold!r}")
        if isinstance(class_names, str):
            raise TypeError(f"class_names must be None or a list of names; received the string {class_names!r}")
        if task == "binary" and class_names is not None and len(class_names) != 2:
            raise ValueError(
                f"class_names for task='binary' must be two names (negative, positive); received {len(class_names)}"
            )
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a string; received {prefix!r}")
        self._arrays, self._dataset = self._split_validation_data(validation_data)
        self.task = task
        self.prefix = prefix
        self.every_n_epochs = every_n_epochs
        self.class_names = None if class_names is None else [str(n) for n in class_names]
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self._scalars = None if log_dir is None else ScalarWriter(log_dir)
        self.plot_dir = None if plot_dir is None else os.fspath(plot_dir)
        self.threshold = threshold
        self.per_class = per_class
        self.from_logits = from_logits
        self.batch_size = batch_size
        self.plot_every_n_epochs = plot_every_n_epochs
        self.output = output

    @staticmethod
    def _split_validation_data(data):
        if isinstance(data, (tuple, list)):
            if len(data) != 2:
                raise ValueError(
                    "validation_data must be (x, y) or a dataset of (x, y) batches; received a "
                    f"{type(data).__name__} of length {len(data)} (sample weights are not supported)"
                )
            x, y = data[0], data[1] if isinstance(data[1], (dict, list, tuple)) else np.asarray(data[1])
            if hasattr(x, "shape") and hasattr(y, "shape"):  # arrays and tensors; a dict of inputs is left to Keras
                samples = [a.shape[0] if len(a.shape) else 0 for a in (x, y)]
                if samples[0] != samples[1]:
                    raise ValueError(f"validation_data x and y must have the same number of samples; received "
                                     f"{samples[0]} and {samples[1]}")
            return (x, y), None
        if not hasattr(data, "__iter__") or isinstance(data, (np.ndarray, str, dict)):
            raise ValueError(
                f"validation_data must be (x, y) or a dataset of (x, y) batches; received {type(data).__name__}"
            )
        if iter(data) is data:
            raise ValueError(
                "validation_data must be re-iterable (it is read every evaluated epoch); "
                f"received a one-shot iterator {type(data).__name__}"
            )
        return None, data

    # ------------------------------------------------------------ predictions

    def _output_name(self):
        """The scored output: ``output``, else the main one (the only one, or ``"predictions"``)."""
        names = self._output_names()
        if self.output is not None:
            if self.output not in names:
                raise ValueError(f"ClassificationMetrics output must be one of the model's outputs {names}; "
                                 f"received {self.output!r}")
            return self.output
        if len(names) == 1:
            return names[0]
        if MAIN_OUTPUT not in names:
            raise ValueError(f"ClassificationMetrics: the model has {len(names)} outputs {names} and none is "
                             f"{MAIN_OUTPUT!r}; pass output=NAME to choose one")
        return MAIN_OUTPUT

    def _output_names(self):
        # Sequential and subclassed models have no output_names: one output, named after the model
        return list(getattr(self.model, "output_names", None) or [self.model.name])

    def _pick(self, values, what):
        """The scored output's part of a model's predictions or of per-output targets."""
        name = self._output_name()
        names = self._output_names()
        named = _named(values, names)
        if named is None:
            if what == "predictions" and len(names) > 1:
                raise ValueError(f"ClassificationMetrics: the model's {what} are not per output; received "
                                 f"{type(values).__name__}")
            return np.asarray(values)
        if name not in named:
            raise ValueError(f"ClassificationMetrics: the {what} have no {name!r} entry; they name {list(named)}")
        return np.asarray(named[name])

    def _predict(self):
        if self._arrays is not None:
            x, y_true = self._arrays
            y_true = self._pick(y_true, "labels")
            y_score = self._pick(self.model.predict(x, batch_size=self.batch_size, verbose=0), "predictions")
        else:
            scores, truths = [], []
            for batch in self._dataset:
                if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                    raise ValueError(
                        f"validation_data dataset must yield (x, y) batches; received {type(batch).__name__}"
                        + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
                    )
                scores.append(self._pick(self.model.predict_on_batch(batch[0]), "predictions"))
                truths.append(self._pick(batch[1], "labels"))
            if not scores:
                raise ValueError("validation_data dataset yielded no batches")
            y_score, y_true = np.concatenate(scores), np.concatenate(truths)
        if self.from_logits and self.task == "multiclass":
            z = y_score.astype(np.float64)
            z = np.exp(z - z.max(axis=1, keepdims=True))
            y_score = z / z.sum(axis=1, keepdims=True)
        return y_true, y_score

    def _threshold(self):
        if self.from_logits and self.task != "multiclass":
            return math.log(self.threshold / (1 - self.threshold))
        return self.threshold

    def compute(self):
        """Predict ``validation_data`` with the current model; return the prefixed values."""
        return self._values(*self._predict())

    def _values(self, y_true, y_score):
        if not np.isfinite(y_score).all():
            return self._diverged(y_true, y_score)
        values = _metrics.classification_summary(
            y_true,
            y_score,
            task=self.task,
            threshold=self._threshold(),
            per_class=self.per_class and self.task != "binary",
            class_names=self.class_names if self.task != "binary" else None,
        )
        return {self.prefix + key: float(v) for key, v in values.items()}

    def _diverged(self, y_true, y_score):
        """NaN for every key when the model predicts NaN or infinity (training diverged): the logs keep their
        keys and ``TerminateOnNaN`` (or the user's own check) stops training, not an exception here.
        keras_cnn.metrics itself still refuses such scores."""
        stand_in = np.full(np.shape(y_score), 0.5, dtype="float64")  # finite scores give the same keys
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", _metrics.UndefinedMetricWarning)
            keys = self._values(y_true, stand_in)
        return {key: math.nan for key in keys}

    # ------------------------------------------------------------ Keras hooks

    def on_epoch_end(self, epoch, logs=None):
        evaluate = (epoch + 1) % self.every_n_epochs == 0
        plot = self.plot_dir is not None and self.plot_every_n_epochs and (epoch + 1) % self.plot_every_n_epochs == 0
        if not (evaluate or plot):
            return
        y_true, y_score = self._predict()
        if not np.isfinite(y_score).all():
            skipped = (["its metrics are NaN"] if evaluate else []) + (["no plots"] if plot else [])
            _warn_diverged(f"epoch {epoch + 1}: {' and '.join(skipped)}")
        if evaluate:
            values = self._values(y_true, y_score)
            if logs is not None:
                logs.update(values)
            if self._scalars is not None:
                self._scalars.write(values, epoch)
        if plot:
            self._save_plots(y_true, y_score, f"epoch_{epoch + 1:03d}")

    def on_train_end(self, logs=None):
        if self.plot_dir is not None:
            y_true, y_score = self._predict()
            if not np.isfinite(y_score).all():
                _warn_diverged(f"no final plots in {self.plot_dir}")
            self._save_plots(y_true, y_score, "final")
        if self._scalars is not None:
            self._scalars.close()

    def _save_plots(self, y_true, y_score, tag):
        if not np.isfinite(y_score).all():
            return  # no curves of NaN scores (on_epoch_end and on_train_end say so)
        with warnings.catch_warnings():
            # The same undefined classes were already reported when computing the values.
            warnings.simplefilter("ignore", _metrics.UndefinedMetricWarning)
            save_plots(
                y_true,
                y_score,
                self.plot_dir,
                task=self.task,
                tag=tag,
                class_names=self.class_names,
                threshold=self._threshold(),
            )
