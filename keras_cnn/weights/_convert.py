"""Checkpoint -> keras_cnn model: pick the upstream form, build with the options it needs, convert every tensor by
rule, check everything, then assign (nothing is assigned unless everything fits)."""

import dataclasses
import logging
import os

from keras_cnn import _weights
from keras_cnn.weights._catalog import matches_any, upstreams
from keras_cnn.weights._readers import Checkpoint, read_checkpoint

log = logging.getLogger("keras_cnn.weights")
_LISTED = 5  # tensors named in an error before "and N more"


def detect(model_name, checkpoint, source=None):
    """The :class:`Upstream` of ``model_name`` whose signature ``checkpoint`` carries (``source``, e.g.
    ``"timm"`` or ``"timm:inception_v4"``, narrows the choice)."""
    candidates = [u for u in upstreams(model=model_name) if _wanted(u, source) and _fits_format(u, checkpoint)]
    found = [u for u in candidates if u.matches(checkpoint.tensors)]
    if found:
        return _one(found, checkpoint, model_name)
    elsewhere = sorted({f"{u.key} (keras_cnn {u.model!r})" for u in upstreams()
                        if _fits_format(u, checkpoint) and u.matches(checkpoint.tensors)})
    known = ", ".join(u.key for u in upstreams(model=model_name)) or "none"
    hint = f" It looks like {', '.join(elsewhere)}." if elsewhere else ""
    raise ValueError(f"weights file {checkpoint.describe()} matches no known checkpoint of {model_name!r} "
                     f"(known for it: {known}; first tensors: {_first(checkpoint.tensors)}).{hint}")


def _one(found, checkpoint, model_name):
    """The first match, unless matches need different build options: the same tensors trained with PyTorch's
    padding or TensorFlow's (timm's ``efficientnet_b0`` and ``tf_efficientnet_b0``) cannot be told apart by the
    file, and guessing would be a silently wrong function."""
    differing = [u for u in found[1:] if dict(u.options) != dict(found[0].options)]
    if differing:
        choices = ", ".join(f"{u.key!r} ({_options(u)})" for u in [found[0], *differing])
        raise ValueError(f"weights file {checkpoint.describe()} fits several checkpoints of {model_name!r} that "
                         f"compute different functions: {choices}; pass weights_source (--source) naming the one "
                         "it is.")
    if len(found) > 1:
        log.info("keras_cnn: %s fits %s; using %s's preprocessing record (weights_source chooses another).",
                 checkpoint.describe(), ", ".join(u.key for u in found), found[0].key)
    return found[0]


def _options(upstream):
    return ", ".join(f"{k}={v!r}" for k, v in upstream.options.items()) or "default options"


def _wanted(upstream, source):
    return source is None or source in (upstream.source, upstream.key)


def _fits_format(upstream, checkpoint):
    keras_file = checkpoint.format == "keras-h5"
    return checkpoint.format == "npz" or keras_file == (upstream.source == "keras.applications")


def _first(tensors, count=3):
    return ", ".join(repr(n) for n in list(tensors)[:count])


def build_options(upstream, options):
    """``options`` with those ``upstream`` needs; a conflicting value is a ``ValueError`` naming it."""
    from keras_cnn.model import WEIGHT_PRESERVING

    merged = dict(options)
    for key, value in upstream.options.items():
        if key in merged and merged[key] != value and key not in WEIGHT_PRESERVING:
            raise ValueError(f"{upstream.key} weights need {key}={value!r} for {upstream.model!r}; received "
                             f"{key}={merged[key]!r}.")
        merged.setdefault(key, value)
    return merged


def convert(upstream, checkpoint, model, *, classes, include_top):
    """``(weights, fresh)``: canonical arrays for ``model`` and the keys left to their initial values (a new
    classifier). Every tensor is accounted for, else ``ValueError``."""
    from keras_cnn.model import classifier_keys

    if upstream.renamed is not None:
        checkpoint = dataclasses.replace(checkpoint, tensors=upstream.renamed(checkpoint.tensors))
    shapes = _weights.canonical_shapes(model)
    load_head = include_top and classes == upstream.classes
    fresh = set() if load_head else classifier_keys(shapes)
    sources = {k: s for k, s in upstream.mapping(list(shapes)).items() if k not in fresh}
    _check_rules(upstream, checkpoint, shapes, sources, fresh)
    used = {name for source in sources.values() for name in source.names}
    aux_loaded = any(matches_any(name, upstream.aux) for name in used)
    _check_tensors(upstream, checkpoint, sources, used, load_head, include_top, aux_loaded)
    weights = {}
    for key, source in sources.items():
        value = source(checkpoint.tensors, shapes[key])
        if tuple(value.shape) != tuple(shapes[key]):
            names = ", ".join(f"{n!r} {tuple(checkpoint.tensors[n].shape)}" for n in source.names)
            raise ValueError(f"{upstream.key}: tensor {names} of {checkpoint.describe()} gives shape "
                             f"{tuple(value.shape)} for keras_cnn weight {key!r}, which has shape "
                             f"{tuple(shapes[key])}; nothing was loaded.")
        weights[key] = value
    return weights, fresh


def _check_rules(upstream, checkpoint, shapes, sources, fresh):
    unmapped = [k for k in shapes if k not in fresh and sources.get(k) is None]
    if unmapped:
        raise ValueError(f"{upstream.key}: no rule gives keras_cnn weight(s) {_listing(unmapped)} of "
                         f"{upstream.model!r} from {checkpoint.describe()}; nothing was loaded.")
    absent = sorted({(n, k) for k, s in sources.items() for n in s.names if n not in checkpoint.tensors})
    if absent:
        pairs = [f"{n!r} (for {k!r})" for n, k in absent]
        raise ValueError(f"weights file {checkpoint.describe()} lacks tensor(s) {_listing(pairs, quote=False)} that "
                         f"{upstream.key} has for {upstream.model!r}; it is a checkpoint of another model or "
                         "variant, or incomplete. Nothing was loaded.")


def _check_tensors(upstream, checkpoint, sources, used, load_head, include_top, aux_loaded):
    left = [n for n in checkpoint.tensors if n not in used
            and not upstream.ignored(n, head=load_head, top=include_top, aux=aux_loaded)]
    if left:
        shapes = [f"{n!r} {tuple(checkpoint.tensors[n].shape)}" for n in left]
        raise ValueError(f"weights file {checkpoint.describe()} has tensor(s) {_listing(shapes, quote=False)} that "
                         f"keras_cnn {upstream.model!r} (as {upstream.key}) has no place for; it is a checkpoint "
                         "of another model or variant. Nothing was loaded.")


def _listing(items, quote=True):
    shown = [repr(i) if quote else i for i in items[:_LISTED]]
    more = f" and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
    return ", ".join(shown) + more


def load_checkpoint(model, path_or_checkpoint, *, source=None):
    """Load an upstream checkpoint into ``model`` (built by :func:`keras_cnn.build` with the options the
    checkpoint needs); returns the :class:`Upstream` used."""
    from keras_cnn.model import model_config

    checkpoint = path_or_checkpoint if isinstance(path_or_checkpoint, Checkpoint) \
        else read_checkpoint(path_or_checkpoint)
    config = model_config(model)
    upstream = detect(config["model_name"], checkpoint, source)
    for key, value in upstream.options.items():
        if config.get(key) != value:
            raise ValueError(f"{upstream.key} weights need {key}={value!r}; model {model.name!r} was built with "
                             f"{key}={config.get(key)!r}. Build it with keras_cnn.build(..., weights=PATH).")
    weights, fresh = convert(upstream, checkpoint, model, classes=config["classes"],
                             include_top=config["include_top"])
    _weights.assign(model, weights, keep=fresh)
    if fresh and config["include_top"]:
        log.warning("keras_cnn: %s has %d classes, the model %d: the trunk is loaded, the classifier starts "
                    "from fresh weights.", upstream.key, upstream.classes, config["classes"])
    return upstream


def provenance(upstream, checkpoint):
    """What a model records of the checkpoint it was loaded from."""
    return {"source": upstream.source, "upstream": upstream.name, "file": os.path.basename(checkpoint.path),
            "preprocessing": {k: list(v) if isinstance(v, tuple) else v
                              for k, v in upstream.preprocessing.items()}}
