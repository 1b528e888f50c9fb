"""The upstream checkpoints keras_cnn converts: one :class:`Upstream` per (source, upstream model) pair."""

import dataclasses
import fnmatch
from typing import Callable, Mapping

SOURCES = ("torchvision", "timm", "keras.applications")
_CATALOG = {}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet(size=224, resize=None, *, mean=IMAGENET_MEAN, std=IMAGENET_STD, interpolation="bilinear"):
    """A preprocessing record of a checkpoint: images in [0, 1] resized to ``resize`` (default ``size / 0.875``,
    the usual crop ratio), centre-cropped to ``size`` and normalised as ``(x - mean) / std`` per RGB channel."""
    resize = resize or int(round(size / 0.875))
    return {"input_size": (size, size), "resize": (resize, resize), "mean": tuple(mean), "std": tuple(std),
            "interpolation": interpolation}


INCEPTION = dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))  # TF-slim's [-1, 1] inputs
CAFFE = dict(mean=(123.68 / 255, 116.779 / 255, 103.939 / 255), std=(1 / 255,) * 3)  # RGB after the BGR flip


@dataclasses.dataclass(frozen=True)
class Upstream:
    """One upstream checkpoint form.

    ``mapping(keys) -> {key: Source | None}`` translates the canonical keys of the model built with ``options``;
    ``signature`` are tensor names that identify the checkpoint among others of ``model``; ``head`` and ``aux``
    are globs of the upstream classifier and auxiliary-classifier tensors (left out when the model has no such
    layers or a different number of classes); ``top`` globs every tensor of the layers ``include_top=False``
    drops (default: ``head``; VGG's and AlexNet's hidden fully connected layers too); ``ignore`` globs tensors without a keras_cnn counterpart (counters).
    ``reference`` is how ``make goldens`` builds the upstream model (``"torchvision.models.resnet50"``,
    ``"timm:inception_v4"``); ``golden_input`` the input size of its reference logits; ``note`` what a user should know (e.g. a row the
    converter maps but cannot match exactly). ``renamed(tensors) -> tensors`` gives a file's tensors the names
    ``mapping`` uses where the file's own are not stable (keras.applications' automatically named layers,
    ``conv2d_<n>``, numbered by whatever the saving session had built before).
    """

    source: str
    name: str
    model: str
    mapping: Callable
    signature: tuple
    preprocessing: Mapping
    options: Mapping = dataclasses.field(default_factory=dict)
    head: tuple = ()
    top: tuple = None
    aux: tuple = ()
    ignore: tuple = ("*num_batches_tracked",)
    classes: int = 1000
    reference: str = None
    reference_kwargs: Mapping = dataclasses.field(default_factory=dict)
    golden_input: int = None
    golden_dtype: str = "float32"  # "float64" where seeded weights amplify float32 rounding past the tolerance
    slow: bool = False  # its golden test runs in the slow suite (a deeper row of rules a CI row already runs)
    note: str = ""
    renamed: Callable = None

    @property
    def key(self):
        return f"{self.source}:{self.name}"

    def matches(self, tensors):
        return all(name in tensors for name in self.signature)

    def ignored(self, name, *, head, top=True, aux):
        top_globs = self.head if self.top is None else self.top
        globs = self.ignore + (() if head else self.head) + (() if top else top_globs) + (() if aux else self.aux)
        return matches_any(name, globs)


def matches_any(name, globs):
    """Whether tensor ``name`` matches one of the shell-style ``globs`` (case-sensitive)."""
    return any(fnmatch.fnmatchcase(name, g) for g in globs)


def register_upstream(upstream):
    if upstream.source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}; received {upstream.source!r}.")
    if upstream.key in _CATALOG:
        raise ValueError(f"upstream {upstream.key!r} is registered twice.")
    _CATALOG[upstream.key] = upstream
    return upstream


def upstreams(model=None, source=None):
    """The registered upstream checkpoints, optionally of one keras_cnn ``model`` and/or ``source``."""
    _load_families()
    return [u for u in _CATALOG.values() if (model is None or u.model == model)
            and (source is None or u.source == source)]


def get_upstream(key):
    _load_families()
    if key not in _CATALOG:
        raise ValueError(f"unknown upstream {key!r}; known: {sorted(_CATALOG)}.")
    return _CATALOG[key]


def _load_families():
    from keras_cnn.weights import families  # noqa: F401  (registers every family's upstreams)
