"""The one model registry: ``@register`` records a builder, ``build()`` makes a model, ``list_models()`` lists.

A family module registers one builder per table row::

    for name, (config, defaults) in VARIANTS.items():
        register(name, family="vgg", default_input=(224, 224, 3), min_input=32,
                 fixed_input=True, spec=CONFIGS[config], **defaults)(vgg)

A builder has the signature ``builder(inputs, head, *, spec, **options) -> outputs``: it receives the validated
input tensor and the shared :class:`keras_cnn._head.Head`, and ends with one of the head's methods, so
``include_top``, ``pooling``, ``classes`` and ``classifier_activation`` mean the same for every family.
"""

import dataclasses
import fnmatch
import inspect
from typing import Any, Callable, Mapping

from keras_cnn import _head, catalog

_REGISTRY = {}


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """What the registry knows of one model name."""

    name: str
    builder: Callable
    family: str
    default_input: tuple
    min_input: int
    fixed_input: bool
    spec: Any
    defaults: Mapping
    int8_options: Mapping = dataclasses.field(default_factory=dict)

    @property
    def options(self):
        """The documented variant options with this variant's default values."""
        return {**_builder_options(self.builder), **self.defaults}


def _builder_options(builder):
    """A builder's keyword-only parameters (other than ``spec``) are its family's options."""
    params = inspect.signature(builder).parameters.values()
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.name != "spec"}


def register(name, *, family, default_input, min_input, fixed_input=False, spec=None, int8_options=None,
             **defaults):
    """Register ``builder`` under ``name`` (decorator).

    Args:
        name: lower-case model name, unique across the package.
        family: family label, e.g. ``"vgg"``.
        default_input: ``(height, width, channels)`` used when no ``input_shape`` is given.
        min_input: smallest height/width the architecture accepts.
        fixed_input: True when the classifier flattens a feature map, so ``include_top=True`` needs a static
            height and width.
        spec: this variant's row of the family table, passed to the builder as ``spec=``.
        int8_options: option values that give the same function in a form full-integer TFLite quantizes
            better (:func:`keras_cnn.model.int8_form`), e.g. ShuffleNet v1's split grouped convolutions.
        **defaults: this variant's values for the family's options (e.g. ``batch_norm=True``).
    """

    def decorator(builder):
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is already registered (family {_REGISTRY[name].family!r}).")
        unknown = set(defaults) - set(_builder_options(builder))
        if unknown:
            raise TypeError(f"register({name!r}): {sorted(unknown)} are not options of {builder.__name__}.")
        _REGISTRY[name] = ModelEntry(name, builder, family, tuple(default_input), min_input, fixed_input, spec,
                                     defaults, dict(int8_options or {}))
        return builder

    return decorator


def _registered():
    """The registry, with every family imported (they register themselves on import)."""
    import keras_cnn.models  # noqa: F401

    return _REGISTRY


def list_models(pattern=None):
    """Sorted registered model names, optionally filtered by a shell-style wildcard (``"resnet*"``)."""
    names = sorted(_registered())
    if pattern is None:
        return names
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a string such as 'vgg*' or None; received {pattern!r}.")
    return [n for n in names if fnmatch.fnmatchcase(n, pattern.lower())]


def get(name):
    """The :class:`ModelEntry` for ``name``; an unknown name raises ``ValueError`` with the closest names."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a model name string (see keras_cnn.list_models()); received {name!r}.")
    key = name.lower()
    if key not in _registered():
        close = catalog.close_names(key, _REGISTRY)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise ValueError(f"Unknown model name {name!r}.{hint} See keras_cnn.list_models() for all names.")
    return _REGISTRY[key]


def build(
    model_name,
    *,
    include_top=True,
    input_shape=None,
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    weights=None,
    weights_source=None,
    name=None,
    dtype=None,
    **options,
):
    """Build a registered model as a functional ``keras.Model`` (channels-last).

    Arguments follow ``keras.applications``: ``include_top`` keeps the classifier; otherwise ``pooling``
    (None, "avg" or "max") reduces the last feature map. ``classifier_activation`` is None (logits) or a Keras
    activation. ``weights`` is None (random initialisation), a Keras ``.weights.h5`` file, or an upstream
    checkpoint file (torchvision/timm ``.pth``/``.safetensors``, keras.applications ``.h5``; see
    :mod:`keras_cnn.weights`): its form is recognised (``weights_source``, e.g. ``"timm"``, narrows the choice),
    the options it needs are set, every tensor is converted and checked, and its preprocessing is recorded with
    the model (:func:`keras_cnn.weights.checkpoint_info`); with other ``classes`` the classifier starts fresh.
    A :class:`keras_cnn.weights.Checkpoint` already read with :func:`keras_cnn.weights.read_checkpoint` is
    accepted too.
    Nothing is downloaded. ``dtype`` is a Keras dtype policy name (e.g. ``"mixed_bfloat16"``) for this model's
    layers; None uses the global policy. ``options`` are the family's variant options (see
    ``keras_cnn.registry.get(name).options``); an unknown option is a ``TypeError`` naming it.

    The model is a :class:`keras_cnn.model.CNNModel` carrying these arguments (:func:`keras_cnn.model_config`).
    """
    entry = get(model_name)
    checkpoint = weights if _is_checkpoint(weights) else None
    weights = None if checkpoint is not None else _head.check_weights(weights)
    if weights is not None and not weights.endswith(".weights.h5"):
        from keras_cnn.weights import _readers

        checkpoint = _readers.read_checkpoint(weights)
    if checkpoint is not None:
        from keras_cnn.weights import _convert

        upstream = _convert.detect(entry.name, checkpoint, weights_source)
        options = _convert.build_options(upstream, options)
    elif weights_source is not None:
        raise ValueError(f"weights_source applies to upstream checkpoints; received weights={weights!r}.")
    options = _merge_options(entry, options)
    head = _head.Head.create(include_top, pooling, classes, classifier_activation)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string or None; received {name!r}.")
    import keras

    from keras_cnn import model as _model

    dtype = keras.config.dtype_policy().name if dtype is None else _check_dtype(dtype)
    with _model.dtype_policy(dtype):
        inputs, img_input = _head.make_input(entry, input_shape, input_tensor, include_top)
        outputs = entry.builder(img_input, head, spec=entry.spec, **options)
    config = {"model_name": entry.name, **{k: getattr(head, k) for k in _model.HEAD_ARGUMENTS},
              "input_shape": tuple(img_input.shape[1:]),
              "name": name or entry.name, "dtype": dtype, **options}
    model = _model.stored_config(inputs, outputs, name or entry.name, config)
    if checkpoint is not None:
        _convert.load_checkpoint(model, checkpoint, source=upstream.key)
        model.set_weights_info(_convert.provenance(upstream, checkpoint))
    elif weights is not None:
        model.load_weights(weights)
    return model


def _is_checkpoint(weights):
    """A checkpoint already read (:func:`keras_cnn.weights.read_checkpoint`), so one read serves detection and
    conversion."""
    if weights is None or isinstance(weights, (str, bytes)):
        return False
    from keras_cnn.weights._readers import Checkpoint

    return isinstance(weights, Checkpoint)


def _check_dtype(dtype):
    import keras

    try:
        return keras.dtype_policies.get(dtype).name
    except (ValueError, TypeError) as error:
        raise ValueError(f"dtype must be a Keras dtype policy name such as 'float32', 'mixed_float16' or "
                         f"'mixed_bfloat16'; received {dtype!r}.") from error


def _merge_options(entry, options):
    allowed = entry.options
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        names = ", ".join(sorted(allowed)) or "none"
        raise TypeError(
            f"Unknown option(s) {', '.join(map(repr, unknown))} for model {entry.name!r}; "
            f"its options are: {names}."
        )
    return {**allowed, **options}
