"""Architectures that are no registered variant: the paper's ablations and tiny networks for fast tests.

``keras_cnn.build`` cannot change a variant's architecture: the spec row is the variant, its options are
regularisation, implementation choices and the ablations a family exposes as options (ResNet ``shortcut``,
``stride_in_1x1``; CONTRIBUTING.md). A test that needs another row builds it the way ``build`` builds a variant,
through the registered builder, with some spec fields replaced.
"""

import dataclasses

import keras

from keras_cnn import _head, registry


def build_variant(name, spec_changes, *, input_shape=None, include_top=True, classes=3, **options):
    """Variant ``name`` with ``dataclasses.replace(spec, **spec_changes)`` as its row; ``options`` as for ``build``
    (the variant's defaults otherwise). The input is ``name``'s default unless ``input_shape`` is given."""
    entry = registry.get(name)
    spec = dataclasses.replace(entry.spec, **spec_changes)
    head = _head.Head.create(include_top, None, classes, "softmax")
    image = keras.Input(shape=input_shape or entry.default_input, name="image")
    return keras.Model(image, entry.builder(image, head, spec=spec, **{**entry.options, **options}), name=name)
