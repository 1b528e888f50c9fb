"""The registered models: name, family and default input, with --parameters their trainable parameters.

Same as ``keras-cnn list``; ``python apps/list.py --help`` lists the flags. Example:
``python apps/list.py "resnet*" --parameters``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_cnn import cli  # noqa: E402

if __name__ == "__main__":
    cli.main(["list", *sys.argv[1:]])
