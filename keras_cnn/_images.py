"""Images into model inputs: one listing, one decoder, one channel rule and one size limit for the data loaders
and the apps.

``keras_cnn.data`` (arrays), ``keras_cnn.app.sources`` (``tf.data``), ``keras_cnn.app.predict`` (image files)
and the preprocessing record all list, check, decode and convert colour here, so a file gives the same pixels
everywhere. The decoding and conversions are TensorFlow ops that run eagerly or inside ``tf.data.Dataset.map``;
the listing and the header check (PIL, which reads only a file's header) run in Python before any decoding.
"""

import os
from typing import NamedTuple

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # keras.utils.image_dataset_from_directory's
FORMATS = "BMP, GIF, JPEG or PNG"
MAX_PIXELS = 89_478_485  # PIL's Image.MAX_IMAGE_PIXELS default (a 24-bit 256 MiB image): more is refused unread
CHANNEL_MODES = {1: "grey (L)", 2: "grey and alpha (LA)", 3: "RGB", 4: "RGBA"}  # PIL's modes by channel count


class Skipped(NamedTuple):
    """A file that was not used, and why (unreadable, corrupt or over the pixel limit)."""

    file: str
    reason: str


def list_images(folder):
    """The image files under ``folder``, recursively, in the order of Keras's ``index_directory``.

    Keras's rules (``image_dataset_from_directory``): files whose lower-cased name ends in one of
    ``IMAGE_EXTENSIONS``, sub-folders searched recursively (symbolic links to folders are not followed), the
    folders by path and the files of each folder by name. Stricter than Keras: hidden files and folders (a name
    starting with ".", such as ``.ipynb_checkpoints`` or macOS's ``._photo.jpg``) are skipped at every depth. A
    folder that cannot be listed is an ``OSError`` naming it, never a silently missing part of the data.
    """
    found = []
    for root, folders, files in os.walk(folder, onerror=_raise):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found.append((root, sorted(name for name in files if _is_image_name(name))))
    return [os.path.join(root, name) for root, names in sorted(found) for name in names]


def class_folders(folder):
    """The class names of a class-per-sub-folder tree: its sorted sub-folders not starting with "." (Keras's)."""
    return sorted(name for name in os.listdir(folder)
                  if not name.startswith(".") and os.path.isdir(os.path.join(folder, name)))


def _is_image_name(name):
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _raise(error):
    raise error


def check_max_pixels(max_pixels):
    """``max_pixels`` resolved: None is the module's ``MAX_PIXELS`` (read at call time, so it can be raised)."""
    from keras_cnn import _validate

    return _validate.check_int("max_pixels", MAX_PIXELS if max_pixels is None else max_pixels, minimum=1)


def header_problem(file, max_pixels=None):
    """Why ``file`` must not be decoded, from its header alone; None when it may be.

    PIL's ``Image.open`` reads only the header, so an image of more than ``max_pixels`` (default ``MAX_PIXELS``)
    pixels is refused before a byte of it is decoded: a 400 KB PNG can hold 20000x20000 pixels, 1.2 GB decoded.
    Also refused: a file that cannot be opened, and one PIL cannot identify as an image. PIL's own warning for
    large images is silenced here, where this limit replaces it: call this from one thread (``warnings`` state
    is process-wide).
    """
    return header(file, max_pixels)[0]


def header(file, max_pixels=None):
    """``(problem, (height, width))`` from the file's header: :func:`header_problem`'s answer and the size (None
    with a problem)."""
    limit = max_pixels if type(max_pixels) is int and max_pixels >= 1 else check_max_pixels(max_pixels)
    size = _png_size(file)
    if size is not None and size[0] * size[1] <= limit:
        return None, size
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                width, height = image.size
    except Image.DecompressionBombError:  # PIL reads no header above twice its own limit
        return _bomb(limit, 2 * Image.MAX_IMAGE_PIXELS), None
    except UnidentifiedImageError:
        return f"not a {FORMATS} image, or a damaged one: PIL cannot identify its header", None
    except OSError as error:
        return f"cannot be read: {error.strerror or error}", None
    if width * height > limit:
        return f"{width}x{height} = {width * height:,} pixels, over the max_pixels limit of {limit:,}", None
    return None, (height, width)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(file):
    """``(height, width)`` of a PNG from its first chunk (IHDR, bytes 8-24), as PIL reads it, or None for
    anything else or anything odd (PIL then reads the header and names the problem). A fifth of PIL's time for
    the common case, which :func:`keras_cnn.data.dataset` pays for every file before decoding."""
    try:  # os-level calls: about half the time of open() and its buffered reader, for 24 bytes
        handle = os.open(file, os.O_RDONLY)
        try:
            head = os.read(handle, 24)
        finally:
            os.close(handle)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return (height, width) if 0 < width < 2 ** 31 and 0 < height < 2 ** 31 else None


def _bomb(limit, pil_limit):
    if limit < pil_limit:
        return f"more than {pil_limit:,} pixels, over the max_pixels limit of {limit:,}"
    return (f"more than {pil_limit:,} pixels: PIL reads no header that large; raise PIL.Image.MAX_IMAGE_PIXELS "
            f"as well as max_pixels {limit:,} to allow it")


def decode_problem(file):
    """Why TensorFlow cannot decode ``file`` (corrupt, truncated, another format); None when it can."""
    try:
        _decoded(file)
    except _decode_errors() as error:
        return _corrupt(error)
    return None


def _decode_errors():
    import tensorflow as tf

    return tf.errors.InvalidArgumentError, tf.errors.NotFoundError, tf.errors.UnknownError


def _corrupt(error):
    """The reason for a TensorFlow decoding error: its message without the ``{{function_node ...}}`` prefix and
    the ``[Op:...]`` suffix."""
    message = error.message.split("}}")[-1].split(" [Op:")[0].strip() or "TensorFlow cannot decode it"
    return f"corrupt or not a {FORMATS} image: {message.splitlines()[0]}"


def name_skipped(skipped, first=5):
    """``a.png (why); b.png (why) and 3 more``: the first ``first`` skipped files with their reasons."""
    shown = "; ".join(f"{item.file} ({item.reason})" for item in skipped[:first])
    return shown + (f" and {len(skipped) - first} more" if len(skipped) > first else "")


def _decoded(file, channels=0):
    """The file's pixels with its own channels (1, 2, 3 or 4; or ``channels``), uint8; GIF: the first frame."""
    import tensorflow as tf

    return tf.io.decode_image(tf.io.read_file(file), channels=channels, expand_animations=False)


def decode_image(file, channels, size=None, *, resize=None):
    """An image file (PNG, JPEG, GIF's first frame, BMP) -> float32 ``(H, W, channels)`` in [0, 1].

    Decoded with the file's own channels, brought to ``channels`` by :func:`match_channels` and, with ``size``,
    resized to it (antialiased; ``resize`` as :func:`to_model_range`). For 3 channels the decoders convert
    instead: their grey-to-RGB (replicated) and alpha-dropping conversions are the channel rule's, for every PNG
    colour type, JPEG, GIF and BMP (``tests/test_data_dataset.py``), and that saves a branch per image. Raises
    TensorFlow's error for an unreadable or corrupt file. It checks no size (graph mode cannot read a header
    first): list files with :func:`header_problem` or use :func:`read_image`.
    """
    image = _decoded(file, 3 if channels == 3 else 0)
    if size is None:
        return to_unit_range(image, channels)
    return to_model_range(image, size, channels, resize=resize)


def read_image(file, channels, size=None, *, max_pixels=None):
    """:func:`decode_image` run eagerly after :func:`header_problem`: ``(image, None)``, or ``(None, reason)``
    for a missing, unreadable, corrupt or over-limit file, which is never decoded."""
    problem = header_problem(file, max_pixels)
    if problem is not None:
        return None, problem
    try:
        return decode_image(file, channels, size), None
    except _decode_errors() as error:
        return None, _corrupt(error)


def to_unit_range(image, channels):
    """A uint8 (or float) image ``(H, W, c)`` -> float32 in [0, 1] with ``channels`` (:func:`match_channels`)."""
    import tensorflow as tf

    image = tf.image.convert_image_dtype(tf.convert_to_tensor(image), tf.float32)
    return match_channels(tf.ensure_shape(image, (None, None, image.shape[-1])), channels)


def to_model_range(image, size, channels, *, resize=None):
    """A uint8 (or float) image of any size -> float32 in [0, 1] at ``size`` (antialiased) with ``channels``.

    Resized first and converted after: the scaling to [0, 1] and every channel conversion are affine per pixel
    and the antialiased kernel's weights sum to 1, so the order changes values only by float rounding (~1e-7),
    while the conversion then touches ``size``'s pixels, not the file's. An image already at ``size`` is not
    resampled (the kernel would return it unchanged). ``resize`` True or False says so for every image (a
    folder whose headers were read: no per-image branch), None decides per image.
    """
    import tensorflow as tf

    image = tf.convert_to_tensor(image)
    scale = 1.0 / image.dtype.max if image.dtype.is_integer else 1.0  # convert_image_dtype's factor
    image = tf.ensure_shape(image, (None, None, image.shape[-1]))

    def resampled():
        return tf.image.resize(image, size, antialias=True)  # float32 in the file's range

    if resize is None:
        same = tf.reduce_all(tf.equal(tf.shape(image)[:2], tf.constant(size, tf.int32)))
        pixels = tf.cond(same, lambda: tf.cast(image, tf.float32), resampled)
    else:
        pixels = resampled() if resize else tf.cast(image, tf.float32)
    return match_channels(tf.ensure_shape(pixels * scale, (*size, image.shape[-1])), channels)


def match_channels(x, channels):
    """The channel rule, PIL's ``Image.convert`` between its modes by channel count: 1 = L (grey), 2 = LA,
    3 = RGB, 4 = RGBA.

    The colour part: RGB -> grey is luma (``tf.image.rgb_to_grayscale``, ITU-R 601 weights), grey -> RGB
    replicates the grey. The alpha channel: kept when both have one, dropped when the target has none (not
    composited), added opaque (1.0, or the integer type's maximum) when the source has none. So RGB -> RGBA is
    ``(r, g, b, 1)`` and grey -> LA is ``(l, 1)``. Any other pair of unequal counts (5 channels and more) is a
    ``ValueError``. ``x`` is an image or a batch of float values in [0, 1] (or integers); its channel count may be
    unknown until run time (a file decoded in ``tf.data`` with its own channels).
    """
    import tensorflow as tf

    have = x.shape[-1]
    if have == channels:
        return x
    _check_convertible(have, channels)
    if have is not None:
        return _convert(x, have, channels)
    branches = [lambda n=n: _convert(tf.ensure_shape(x, [*x.shape[:-1], n]), n, channels) for n in CHANNEL_MODES]
    return tf.switch_case(tf.shape(x)[-1] - 1, branches)  # a decoded file has 1 to 4 channels


def _check_convertible(have, channels):
    if channels not in CHANNEL_MODES or (have is not None and have not in CHANNEL_MODES):
        modes = ", ".join(f"{n} = {mode}" for n, mode in CHANNEL_MODES.items())
        raise ValueError(f"channels: images convert between 1 to 4 channels ({modes}); received images of "
                         f"{have} channel(s) for a model input of {channels}.")


def _convert(x, have, channels):
    import tensorflow as tf

    if have == channels:
        return x
    alpha = x[..., have - 1:] if have in (2, 4) else None
    colour = x[..., :have - 1] if alpha is not None else x
    if colour.shape[-1] == 3 and channels in (1, 2):
        colour = tf.image.rgb_to_grayscale(colour)
    elif colour.shape[-1] == 1 and channels in (3, 4):
        colour = tf.concat([colour] * 3, axis=-1)
    if channels in (1, 3):
        return colour
    if alpha is None:
        alpha = tf.ones_like(colour[..., :1]) * (colour.dtype.max if colour.dtype.is_integer else 1)
    return tf.concat([colour, alpha], axis=-1)
