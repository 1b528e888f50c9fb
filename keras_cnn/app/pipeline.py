"""The ``tf.data`` input of training and evaluation: cache, shuffle, augment, normalise, batch, prefetch.

Decoded images are cached (in memory when they fit in ``CACHE_BYTES``, or in a file given with ``--cache``)
before the random steps, so later epochs skip reading and resizing; every map runs with parallel calls and the
last step prefetches, so input preparation overlaps training.
"""

from keras_cnn.app import augment

CACHE_BYTES = 2 << 30


def cached(dataset, count, image_shape, cache):
    """``cache`` "auto" (memory when the float32 images fit in CACHE_BYTES), "memory", "none" or a file path."""
    if cache == "none" or (cache == "auto" and count * 4 * _product(image_shape) > CACHE_BYTES):
        return dataset
    return dataset.cache("" if cache in ("auto", "memory") else cache)


def training(split, record, recipe, *, batch_size, seed, targets, cache="auto", repeat=False, drop_remainder=False):
    """Shuffled, augmented, normalised batches of ``(image, targets(label))`` for ``model.fit``.

    ``repeat`` makes it endless (the custom loop counts steps itself, and every worker must run as many).
    """
    import tensorflow as tf

    stored = split.dataset.element_spec[0].shape
    cache = "none" if split.in_memory else cache  # decoded and held already
    dataset = cached(split.dataset, split.count, stored, cache).shuffle(split.count, seed=seed,
                                                                       reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if recipe.per_image:
        fn = augment.per_image(recipe, record.input_size)
        randoms = tf.data.Dataset.random(seed=seed).batch(2)  # one stateless seed pair per image
        dataset = tf.data.Dataset.zip((dataset, randoms)).map(
            lambda pair, pair_seed: (fn(pair[0], pair_seed), pair[1]), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(lambda image, label: (_centre(image, record), label),
                              num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=tf.data.AUTOTUNE)
    batch_layers = augment.per_batch(recipe, seed)
    if batch_layers is not None:  # sequential: the layers' random state advances in one order, run after run
        dataset = dataset.map(lambda images, labels: (batch_layers(images, training=True), labels))
    return dataset.map(lambda images, labels: (record.normalize(images), targets(labels)),
                       num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def evaluation(split, record, *, batch_size, targets=None, cache="auto"):
    """Centre-cropped, normalised batches of ``(image, label)`` (or ``targets(label)``), in a fixed order."""
    import tensorflow as tf

    dataset = split.dataset.batch(batch_size)
    if not _prepared_already(dataset, record):  # record.prepare takes a batch: one call per batch, not per image
        dataset = dataset.map(lambda images, labels: (record.prepare(images), labels),
                              num_parallel_calls=tf.data.AUTOTUNE)
    if targets is not None:
        dataset = dataset.map(lambda images, labels: (images, targets(labels)))
    if split.in_memory:  # decoded and held already; prepare is a few cheap ops per batch
        cache = "none"
    return cached(dataset, split.count, (*record.input_size, record.channels), cache).prefetch(tf.data.AUTOTUNE)


def _prepared_already(dataset, record):
    """True when ``record.prepare`` would return the batches unchanged: stored at the model's input shape (no
    channel change, resize or crop) and normalised as "unit" (mean 0, std 1)."""
    shape = tuple(dataset.element_spec[0].shape[1:])
    return (shape == (*record.input_size, record.channels) and tuple(record.resize) == tuple(record.input_size)
            and all(m == 0 for m in record.mean) and all(s == 1 for s in record.std))


def arrays(split, record=None):
    """The whole split as NumPy ``(images, labels)``; prepared by ``record`` when given."""
    import numpy as np

    images, labels = [], []
    for image, label in split.dataset.batch(256):
        images.append(record.prepare(image).numpy() if record is not None else image.numpy())
        labels.append(label.numpy())
    return np.concatenate(images), np.concatenate(labels)


def _centre(image, record):
    from keras_cnn.app.preprocessing import centre_crop

    return centre_crop(image, record.input_size)


def _product(shape):
    result = 1
    for d in shape:
        result *= int(d)
    return result
