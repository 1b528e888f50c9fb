"""Images into model inputs: one decoder and one channel rule for the data loaders and the apps.

``keras_cnn.data`` (arrays), ``keras_cnn.app.sources`` (``tf.data``), ``keras_cnn.app.predict`` (image files)
and the preprocessing record all decode and convert colour here, so a file gives the same pixels everywhere.
Every function is TensorFlow ops only and runs eagerly or inside ``tf.data.Dataset.map``.
"""


def decode_image(file, channels, size=None):
    """An image file (PNG, JPEG, GIF's first frame, BMP) -> float32 ``(H, W, channels)`` in [0, 1].

    Decoded as RGB, brought to ``channels`` by :func:`match_channels` and, with ``size``, resized to it
    (antialiased). Raises TensorFlow's error for an unreadable or corrupt file (:func:`read_image`: None).
    """
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(file), channels=3, expand_animations=False)
    return to_model_range(image, size, channels) if size is not None else to_unit_range(image, channels)


def read_image(file, channels, size=None):
    """:func:`decode_image` run eagerly; None for a missing, unreadable or corrupt file."""
    import tensorflow as tf

    try:
        return decode_image(file, channels, size)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, tf.errors.UnknownError):
        return None


def to_unit_range(image, channels):
    """A uint8 (or float) image ``(H, W, c)`` -> float32 in [0, 1] with ``channels`` (:func:`match_channels`)."""
    import tensorflow as tf

    image = tf.image.convert_image_dtype(tf.convert_to_tensor(image), tf.float32)
    return match_channels(tf.ensure_shape(image, (None, None, image.shape[-1])), channels)


def to_model_range(image, size, channels):
    """A uint8 (or float) image of any size -> float32 in [0, 1] at ``size`` (antialiased) with ``channels``."""
    import tensorflow as tf

    return tf.image.resize(to_unit_range(image, channels), size, antialias=True)


def match_channels(x, channels):
    """The channel rule: grey <-> RGB (luma for RGB -> grey, grey replicated otherwise) and RGBA -> RGB, so a file
    of any colour type fits the model. ``x`` is an image or a batch with a known channel count."""
    import tensorflow as tf

    have = x.shape[-1]
    if have == channels:
        return x
    if have == 4:
        return match_channels(x[..., :3], channels)
    if channels == 1:
        return tf.image.rgb_to_grayscale(x[..., :3])
    return tf.repeat(x[..., :1], channels, axis=-1)
