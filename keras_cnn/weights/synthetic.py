"""Seeded stand-ins for trained checkpoints and images, NumPy only: the same values on every machine, so a
checkpoint written here and the reference logits computed from it by the upstream library (``make goldens``) can
be compared in tests without torch and without downloads.

Tensors are drawn per name (the seed mixes in a CRC of the name, so the order does not matter) at He-like scales;
BatchNorm statistics come from a calibration pass of the upstream model (``stats``), not from random draws, so the
logits depend on the input.
"""

import zlib

import numpy as np

_STAT_SUFFIXES = ("running_mean", "moving_mean", "running_var", "moving_variance", "num_batches_tracked")


def tensor(name, shape, *, layout="torch", seed=0, dtype="float32"):
    """One seeded tensor for parameter ``name`` of ``shape``; ``layout`` is ``"torch"`` (``(O, I, kh, kw)``,
    ``(out, in)``) or ``"keras"`` (``(kh, kw, I, O)``, ``(in, out)``)."""
    shape = tuple(int(s) for s in shape)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    leaf = name.replace("/", ".").split(".")[-1].split(":")[0]
    if leaf == "num_batches_tracked":
        return np.zeros(shape, np.int64)
    if leaf in ("running_var", "moving_variance", "variance"):
        return np.ones(shape, dtype)
    if leaf in ("running_mean", "moving_mean", "mean"):
        return np.zeros(shape, dtype)
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:])) if layout == "torch" else int(np.prod(shape[:-1]))
        if layout == "keras" and len(shape) == 4 and "depthwise" in name:
            fan_in = shape[0] * shape[1]
        return (rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))).astype(dtype)
    if leaf in ("weight", "gamma", "scale"):
        return rng.uniform(0.5, 1.5, shape).astype(dtype)
    return (rng.standard_normal(shape) * 0.1).astype(dtype)


def checkpoint(manifest, *, stats=None, layout="torch", seed=0):
    """``{name: array}`` for ``manifest`` (``[(name, shape), ...]``), with ``stats`` (calibrated BatchNorm
    statistics by name) in place of the placeholders."""
    stats = stats or {}
    return {name: np.asarray(stats[name]) if name in stats else tensor(name, shape, layout=layout, seed=seed)
            for name, shape in manifest}


def is_statistic(name):
    return name.replace("/", ".").split(".")[-1].split(":")[0] in _STAT_SUFFIXES


def images(count, size, *, seed=0):
    """``count`` smooth random images ``(count, size, size, 3)``, roughly zero-mean unit-variance (as normalised
    photographs): coarse structure bilinearly upsampled plus fine texture."""
    rng = np.random.default_rng([seed, 7])
    coarse = rng.standard_normal((count, size // 16 + 2, size // 16 + 2, 3))
    grid = np.linspace(0, coarse.shape[1] - 1, size)
    low = np.floor(grid).astype(int).clip(0, coarse.shape[1] - 2)
    frac = (grid - low)[None, :, None, None]
    rows = coarse[:, low] * (1 - frac) + coarse[:, low + 1] * frac
    frac = frac.reshape(1, 1, size, 1)
    smooth = rows[:, :, low] * (1 - frac) + rows[:, :, low + 1] * frac
    return (smooth + 0.3 * rng.standard_normal((count, size, size, 3))).astype(np.float32)


GOLDEN_IMAGES = dict(count=4, seed=2)  # the images whose logits a golden file holds
CALIBRATION_IMAGES = dict(count=16, seed=1)  # the batch that sets the BatchNorm statistics


def read_golden(path):
    """``(manifest, stats, logits, size)`` of a golden file written by ``tools/make_goldens.py``."""
    import json

    with np.load(path, allow_pickle=False) as file:
        manifest = [(name, tuple(shape)) for name, shape in json.loads(str(file["manifest"]))]
        stats = {name[len("stat:"):]: file[name] for name in file.files if name.startswith("stat:")}
        return manifest, stats, file["logits"], int(file["size"])


def converted_logits(upstream, golden_path, folder):
    """Logits of ``keras_cnn.build(upstream.model, weights=...)`` on the golden images, the checkpoint written
    from the golden's manifest and statistics as ``.safetensors`` in ``folder``; returns ``(keras, reference)``."""
    import os

    import keras_cnn
    from keras_cnn.weights._readers import write_safetensors

    manifest, stats, reference, size = read_golden(golden_path)
    path = write_safetensors(checkpoint(manifest, stats=stats), os.path.join(folder, f"{upstream.name}.safetensors"))
    model = keras_cnn.build(upstream.model, weights=path, weights_source=upstream.key, input_shape=(size, size, 3),
                            classifier_activation=None, dtype=upstream.golden_dtype)
    batch = images(GOLDEN_IMAGES["count"], size, seed=GOLDEN_IMAGES["seed"]).astype(upstream.golden_dtype)
    outputs = model.predict(batch, verbose=0)
    return np.asarray(outputs), reference


def relative_error(actual, reference):
    """max |difference| / max |reference|: the issue's acceptance figure."""
    return float(np.max(np.abs(actual - reference)) / np.max(np.abs(reference)))


def input_dependence(logits):
    """Spread of the logits across images relative to their overall spread: near 0 when the logits no longer
    depend on the input (the failure of random BatchNorm statistics)."""
    return float(np.mean(np.std(logits, axis=0)) / np.std(logits))


def keras_application_golden(application, size, folder, *, filename="application.h5", **kwargs):
    """A keras.applications model (``application``, e.g. ``keras.applications.VGG16``) at ``size`` with seeded
    weights and BatchNorm statistics calibrated on the calibration images, saved in the legacy ``.h5`` layout of
    the files keras.applications downloads; returns ``(path, logits on the golden images)``."""
    import os

    import keras
    from keras.src.legacy.saving import legacy_h5_format

    model = application(weights=None, input_shape=(size, size, 3), classifier_activation=None, **kwargs)
    for layer in model.layers:
        for variable in layer.weights:
            if "float" in str(variable.dtype):
                leaf = variable.path.rsplit("/", 1)[-1]
                variable.assign(tensor(f"{layer.name}/{leaf}", variable.shape, layout="keras"))
    calibration = images(size=size, **CALIBRATION_IMAGES)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(calibration, training=True)
    path = os.path.join(folder, filename)
    import h5py

    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, model)
    logits = model.predict(images(size=size, **GOLDEN_IMAGES), verbose=0)
    return path, np.asarray(logits)


def keras_logits(model_name, path, size, source, *, bgr_reference=False, **options):
    """Logits of ``keras_cnn.build(model_name, weights=path)`` on the golden images (channels reversed when the
    reference took BGR inputs and the converter reversed the first convolution's input channels)."""
    import keras_cnn

    model = keras_cnn.build(model_name, weights=path, weights_source=source, input_shape=(size, size, 3),
                            classifier_activation=None, **options)
    batch = images(size=size, **GOLDEN_IMAGES)
    return np.asarray(model.predict(batch[..., ::-1] if bgr_reference else batch, verbose=0))
