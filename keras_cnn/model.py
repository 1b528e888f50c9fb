"""A model that knows what it is: the build config travels with every model ``keras_cnn.build`` makes.

``build`` returns a :class:`CNNModel`, a functional ``keras.Model`` that also holds its build arguments. Keras
saves them with the graph (``get_config`` adds a ``"keras_cnn"`` entry to the functional config), so a model
reloaded with ``keras.saving.load_model(path, safe_mode=True)``, on this machine or another, still knows its
registry name, variant options, head arguments, input shape and dtype policy. The graph itself is saved and
loaded as Keras's own functional config: a file never depends on the builder code that made it.

- :func:`model_config` returns the arguments of :func:`keras_cnn.build` that rebuild the architecture.
- :func:`rebuild` builds a variant with changed arguments and moves the weights across by canonical name
  (:mod:`keras_cnn._weights`) where the change keeps their meaning.
- :func:`inference_model` drops auxiliary classifiers, sharing the layers.
"""

import contextlib
import json

import keras

from keras_cnn import _weights

HEAD_ARGUMENTS = ("include_top", "pooling", "classes", "classifier_activation")
# Build arguments that `rebuild` may change: each keeps the meaning of every weight it keeps (implementation
# forms of one function, regularisation and initialisation, the head, the input size, the dtype, the name).
# Any other option (stride_in_1x1, activation, residual_scale, ...) changes what the same weights compute.
WEIGHT_PRESERVING = frozenset({
    "memory_efficient", "grouped_conv", "shortcut_pool",
    "dropout", "aux_dropout", "drop_path_rate", "drop_path_mode", "drop_connect_rate", "zero_init_last",
    "include_top", "pooling", "classes", "classifier_activation", "aux_logits",
    "input_shape", "dtype", "name",
})
# layers whose weights depend on the number of classes; a new `classes` gives them fresh weights
CLASSIFIER_LAYERS = ("predictions", "classifier_conv", "aux_predictions", "aux1_predictions", "aux2_predictions")


def classifier_keys(keys):
    """The canonical weight keys (``layer/variable``) of the classifier layers: those a new ``classes`` renews."""
    return {key for key in keys if key.split("/")[0] in CLASSIFIER_LAYERS}


@keras.saving.register_keras_serializable(package="keras_cnn")
class CNNModel(keras.Model):
    """A functional model built by :func:`keras_cnn.build`, carrying its build arguments.

    ``CNNModel(inputs, outputs, name=..., build_config={...})``; ``build_config`` is the JSON-serialisable dict
    :func:`model_config` returns (with the classifier activation serialised).
    """

    def __init__(self, *args, build_config=None, **kwargs):
        super().__init__(*args, **kwargs)
        # a JSON string: Keras's attribute tracking would wrap a dict, and the config must stay as built
        self._keras_cnn_config = None if build_config is None else json.dumps(build_config)
        self._keras_cnn_weights = None
        self._keras_cnn_thresholds = None

    def set_weights_info(self, info):
        """Record where the weights came from and the checkpoint's preprocessing (a JSON-serialisable dict, see
        :func:`keras_cnn.weights.checkpoint_info`); saved with the model."""
        self._keras_cnn_weights = None if info is None else json.dumps(info)

    def set_thresholds(self, thresholds):
        """Record a multi-label model's per-class decision thresholds (``keras_cnn.thresholds.attach`` checks
        them); saved with the model."""
        self._keras_cnn_thresholds = None if thresholds is None else json.dumps([float(t) for t in thresholds])

    def get_config(self):
        config = super().get_config()
        if self._keras_cnn_config is not None:
            config["keras_cnn"] = json.loads(self._keras_cnn_config)
        if getattr(self, "_keras_cnn_weights", None) is not None:
            config["keras_cnn_weights"] = json.loads(self._keras_cnn_weights)
        if getattr(self, "_keras_cnn_thresholds", None) is not None:
            config["keras_cnn_thresholds"] = json.loads(self._keras_cnn_thresholds)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        build_config = config.pop("keras_cnn", None)
        weights_info = config.pop("keras_cnn_weights", None)
        thresholds = config.pop("keras_cnn_thresholds", None)
        model = super().from_config(config, custom_objects=custom_objects)
        model._keras_cnn_config = None if build_config is None else json.dumps(build_config)
        model.set_weights_info(weights_info)
        model.set_thresholds(thresholds)
        return model


def stored_config(inputs, outputs, name, config):
    """The :class:`CNNModel` for a new graph with ``config`` (arguments as :func:`model_config` returns them)."""
    return CNNModel(inputs, outputs, name=name, build_config={k: _encode(v) for k, v in config.items()})


def _encode(value):
    """JSON form of a build argument: tuples become lists, anything else Keras serialises (e.g. a callable)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    return {"keras": keras.saving.serialize_keras_object(value)}


def _decode(value):
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if isinstance(value, dict):
        return keras.saving.deserialize_keras_object(value["keras"])
    return value


def weights_info(model):
    """What ``model`` records of the checkpoint its weights came from (``source``, ``upstream``, ``file``,
    ``preprocessing``), or None."""
    info = getattr(model, "_keras_cnn_weights", None)
    return None if info is None else json.loads(info)


def decision_thresholds(model):
    """The per-class decision thresholds a multi-label ``model`` carries (a tuple of floats), or None."""
    values = getattr(model, "_keras_cnn_thresholds", None)
    return None if values is None else tuple(json.loads(values))


def _with_info(target, model):
    """``target`` carrying ``model``'s checkpoint record (its weights came from there) and its decision
    thresholds while its classifier is the same (same classes, same activation)."""
    target.set_weights_info(weights_info(model))
    same_head = has_config(model) and has_config(target) and all(
        json.loads(model._keras_cnn_config).get(key) == json.loads(target._keras_cnn_config).get(key)
        for key in ("classes", "classifier_activation", "include_top"))
    target.set_thresholds(decision_thresholds(model) if same_head else None)
    return target


def has_config(model):
    """Whether ``model`` carries a keras_cnn build config (made by :func:`keras_cnn.build` or derived here)."""
    return getattr(model, "_keras_cnn_config", None) is not None


def model_config(model):
    """The :func:`keras_cnn.build` arguments of ``model``: ``build(**model_config(model))`` rebuilds it.

    Keys: ``model_name`` (the registry name), the head arguments (``include_top``, ``pooling``, ``classes``,
    ``classifier_activation``), ``input_shape``, ``name`` (the Keras model name), ``dtype`` (the dtype policy it
    was built under) and every variant option of the family with its value. A model built on an
    ``input_tensor`` reports that tensor's shape; a rebuild starts from a fresh input of that shape.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model made by keras_cnn.build; received {type(model).__name__}.")
    if not has_config(model):
        raise ValueError(
            f"model {model.name!r} ({type(model).__name__}) carries no keras_cnn build config: it was not made by "
            "keras_cnn.build (or was re-wrapped, e.g. by keras.Model(model.inputs, ...), or saved by keras_cnn "
            "< 0.2). Build it with keras_cnn.build and load the weights into it."
        )
    return {key: _decode(value) for key, value in json.loads(model._keras_cnn_config).items()}


def rebuild(model, **changes):
    """``model`` rebuilt with ``changes`` to its build arguments, with the same weights.

    Weight-preserving changes: the implementation options (DenseNet ``memory_efficient``, ShuffleNet v1
    ``grouped_conv`` and ``shortcut_pool``), regularisation (drop path, stochastic depth and dropout rates),
    ``dtype`` (e.g. ``"float32"`` for export after mixed precision), ``name``, ``include_top=False`` (the trunk,
    optionally with ``pooling``), ``aux_logits=False`` (auxiliary classifiers dropped; also implied by ``include_top=False``), and ``classes`` or
    ``classifier_activation`` (a new head; the trunk and any hidden fully connected layers are kept, the
    classifier gets fresh weights), and ``input_shape`` where the weights fit. Any other option changes what the
    weights compute (``stride_in_1x1``, an activation, ...) and is a ``ValueError`` naming it, as is a change that
    leaves a weight without a value or changes its shape; nothing is copied then. :data:`WEIGHT_PRESERVING`
    lists the arguments rebuild may change.
    """
    from keras_cnn import registry

    config = model_config(model)
    unknown = sorted(set(changes) - set(config))
    if unknown:
        raise TypeError(f"rebuild: unknown argument(s) {', '.join(map(repr, unknown))} for model "
                        f"{config['model_name']!r}; its arguments are: {', '.join(sorted(config))}.")
    altering = sorted(k for k, v in changes.items() if k not in WEIGHT_PRESERVING and v != config[k])
    if altering:
        raise ValueError(f"rebuild({config['model_name']!r}): {', '.join(f'{k}={changes[k]!r}' for k in altering)} "
                         f"changes what the weights compute (from {', '.join(f'{k}={config[k]!r}' for k in altering)}), "
                         f"so they cannot carry over; the options rebuild may change are: "
                         f"{', '.join(sorted(WEIGHT_PRESERVING & set(config)))}. Build a new model for this change.")
    if changes.get("include_top") is False and config.get("aux_logits") and "aux_logits" not in changes:
        changes["aux_logits"] = False  # a trunk has no auxiliary classifiers either
    target = registry.build(**{**config, **changes})
    _move_weights(model, target, config, changes)
    return _with_info(target, model)


def _move_weights(source, target, config, changes):
    weights = _weights.canonical_weights(source)
    shapes = _weights.canonical_shapes(target)
    fresh = set()
    if "classes" in changes and changes["classes"] != config["classes"]:
        fresh = classifier_keys(shapes)
    missing = sorted(key for key in shapes if key not in weights and key not in fresh)
    changed = sorted(key for key in shapes if key in weights and key not in fresh
                     and tuple(weights[key].shape) != shapes[key])
    dropped = sorted(set(weights) - set(shapes))
    if missing or changed or (dropped and not _drops_layers(config, changes)):
        raise ValueError(_incompatible(config, changes, missing, changed, dropped, weights, shapes))
    _weights.assign(target, weights, keep=fresh)


def _drops_layers(config, changes):
    """Changes after which some of the source's weights have no place: the head or the auxiliary heads go."""
    return (changes.get("include_top", True) is False and config["include_top"]) or (
        changes.get("aux_logits", True) is False and config.get("aux_logits"))


def _incompatible(config, changes, missing, changed, dropped, weights, shapes):
    names = ", ".join(f"{k}={v!r}" for k, v in changes.items()) or "no change"
    if changed:
        detail = f"weight {changed[0]!r} changes shape {tuple(weights[changed[0]].shape)} -> {shapes[changed[0]]}"
    elif missing:
        detail = f"weight {missing[0]!r} (and {len(missing) - 1} more) would have no trained value"
    else:
        detail = f"weight {dropped[0]!r} (and {len(dropped) - 1} more) would be dropped"
    return (f"rebuild({config['model_name']!r}, {names}): {detail}, so the weights cannot keep their meaning. "
            "Weight-preserving changes are implementation and regularisation options, dtype, include_top=False, "
            "aux_logits=False and classes; build a new model for other changes.")


def inference_model(model):
    """The model without its auxiliary classifiers, for evaluation and deployment.

    The result reuses ``model``'s layers (it shares the trained weights, no copy) and computes exactly its main
    output ``predictions``; its build config says ``aux_logits=False``. A model with one output is returned as
    it is.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; received {type(model).__name__}.")
    if len(model.outputs) == 1:
        return model
    names = list(model.output_names)
    if "predictions" not in names:
        raise ValueError(f"model has no 'predictions' output to keep; its outputs are {names}.")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    output = model.outputs[names.index("predictions")]
    if not has_config(model):
        return keras.Model(inputs, output, name=model.name)
    return _with_info(stored_config(inputs, output, model.name, {**model_config(model), "aux_logits": False}),
                      model)


@contextlib.contextmanager
def dtype_policy(dtype):
    """Build under the dtype policy ``dtype`` (a policy name such as ``"mixed_bfloat16"``), then restore."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def int8_form(model):
    """``model`` in the form its family exports to full-integer TFLite, with the same weights and function.

    Families whose plain form quantizes badly register ``int8_options`` (ShuffleNet v1: split grouped
    convolutions and depthwise-average shortcuts, :data:`keras_cnn.models.shufflenet.INT8_FORM`); the model is
    rebuilt with them and checked equal to ``model`` on random images. Any other model (or one already in its
    form, or one without a build config) is returned as it is.
    """
    from keras_cnn import registry

    if not has_config(model):
        return model
    config = model_config(model)
    wanted = registry.get(config["model_name"]).int8_options
    changes = {key: value for key, value in wanted.items() if config[key] != value}
    if not changes:
        return model
    form = rebuild(model, **changes)
    _check_same_function(model, form)
    return form


def _check_same_function(model, form):
    import numpy as np

    shape = [size or 64 for size in model.input_shape[1:]]  # a free spatial size is checked at 64x64
    images = np.random.default_rng(0).uniform(0, 1, (2, *shape)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    got = keras.ops.convert_to_numpy(form(images, training=False))
    if not np.allclose(got, expected, atol=1e-4, rtol=1e-4):
        raise ValueError(f"the int8 form of {model.name!r} differs from it by {np.max(np.abs(got - expected)):.3g}; "
                         "was the model edited after keras_cnn.build?")


def clone(model):
    """``keras.models.clone_model(model)`` (new layers, fresh weights) that keeps the build config."""
    twin = keras.models.clone_model(model)
    if not has_config(model):
        return twin
    return _with_info(stored_config(twin.inputs, twin.outputs, twin.name, model_config(model)), model)
