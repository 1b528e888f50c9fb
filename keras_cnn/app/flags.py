"""Argument types and the flags several commands share; every error names the flag, what it allows and what it got.

argparse prefixes a type's message with the flag (``argument --epochs: must be an integer >= 1; received '0'``).
"""

import argparse
import os
import re

# reStructuredText markup of the docstrings the parsers take as descriptions: ``code`` and :role:`target`
_RST = re.compile(r"``([^`]+)``|:[a-z]+:`~?([^`]+)`")


def integer(minimum=None):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer{_bound(minimum)}; received {text!r}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer{_bound(minimum)}; received {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def number(minimum=None, maximum=None):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be a number{_bound(minimum, maximum)}; received {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def model_name(text):
    """A registered model name (lower-cased), checked against :mod:`keras_cnn.catalog` before TensorFlow loads."""
    from keras_cnn import catalog

    if text.lower() not in catalog.MODELS:
        raise argparse.ArgumentTypeError(f"not a registered model name (keras-cnn list): {text!r}"
                                         f"{catalog.closest(text)}")
    return text.lower()


def int_pair(text):
    """``"256,512"`` -> ``(256, 512)`` with 1 <= first <= second."""
    try:
        low, high = (int(part) for part in text.split(","))
    except ValueError:
        low = high = None
    if low is None or not 1 <= low <= high:
        raise argparse.ArgumentTypeError(f"must be MIN,MAX with integers 1 <= MIN <= MAX; received {text!r}")
    return low, high


def int_list(text):
    """``"256,384,512"`` -> ``(256, 384, 512)``, all >= 1."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers >= 1; received {text!r}")
    return values


def _bound(minimum=None, maximum=None):
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    return f" >= {minimum}" if minimum is not None else ""


def add_data(parser, default="digits", split_help=True):
    """--data, --data-dir, --download, --seed, --val-fraction, --test-fraction, --limit, --cache, --max-pixels."""
    group = parser.add_argument_group("data")
    group.add_argument("--data", default=default, metavar="SOURCE",
                       help="digits (scikit-learn's 1,797 bundled handwritten digits) | folder:PATH (one sub-folder "
                            "per class, images found recursively as keras.utils.image_dataset_from_directory does; "
                            "unreadable files are skipped and named) | tfds:NAME[:SPLIT] "
                            f"(tensorflow-datasets){' (default: %(default)s)' if default else ''}")
    group.add_argument("--data-dir", help="tensorflow-datasets data_dir for tfds: sources")
    group.add_argument("--download", action="store_true",
                       help="let tensorflow-datasets download a tfds: dataset that is not in --data-dir")
    if split_help:
        group.add_argument("--seed", type=integer(0), default=0, help="seed of the fixed split (and of training)")
        group.add_argument("--val-fraction", type=number(0.01, 0.9), default=0.2,
                           help="validation share of digits / folder images; for tfds: of the training split")
        group.add_argument("--test-fraction", type=number(0.01, 0.9), default=0.2,
                           help="test share of digits / folder images (tfds uses its test split)")
    group.add_argument("--limit", type=integer(1), help="use at most this many images of each split (smoke runs)")
    group.add_argument("--cache", default="auto",
                       help="auto (memory when it fits in 2 GiB) | memory | none | a file path for tf.data cache")
    add_max_pixels(group)
    return group


def add_max_pixels(parser):
    """--max-pixels (dest ``max_pixels``, None: keras_cnn._images.MAX_PIXELS): the ``max_pixels`` argument of
    ``keras_cnn.data.scan_folder``, ``keras_cnn.app.sources.load`` and ``keras_cnn._images.read_image``."""
    from keras_cnn import _images

    parser.add_argument("--max-pixels", type=integer(1), metavar="N",
                        help="skip image files of more than N pixels, from their header, before decoding "
                             f"(default: {_images.MAX_PIXELS:,}, PIL's Image.MAX_IMAGE_PIXELS)")


def add_model_file(parser, help_text):
    parser.add_argument("--model", required=True, metavar="PATH", help=help_text)
    parser.add_argument("--preprocessing", metavar="JSON",
                        help="preprocessing record (default: <stem>.preprocessing.json beside the model)")


def plain(parser):
    """``parser`` with its description, epilog, group descriptions and flag help as plain text: the commands take
    their module docstrings (reStructuredText) as descriptions, and a terminal shows ``x`` as it is written."""
    parser.description, parser.epilog = _plain_text(parser.description), _plain_text(parser.epilog)
    for group in parser._action_groups:
        group.description = _plain_text(group.description)
    for action in parser._actions:
        action.help = _plain_text(action.help)
    return parser


def _plain_text(text):
    return text if not isinstance(text, str) else _RST.sub(lambda m: m.group(1) or m.group(2), text)


def file_name(text):
    """A file name without folders (an export's stem): not empty, no path separator, not ``.`` or ``..``."""
    separators = sorted({s for s in (os.sep, os.altsep, "/") if s})
    if not text.strip() or text in (".", "..") or "\0" in text or any(s in text for s in separators):
        raise argparse.ArgumentTypeError(f"must be a file name without folders (no {' or '.join(separators)}, not "
                                         f"empty, not . or ..); received {text!r}")
    return text
