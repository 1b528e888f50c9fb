"""Convert a torchvision, timm or keras.applications checkpoint into keras_cnn's .weights.h5, .keras and
preprocessing record.

Same as ``keras-cnn convert-weights``; ``python apps/convert_weights.py --help`` lists the flags. Example:
``python apps/convert_weights.py --model resnet50 --from resnet50-11ad3fa6.pth --output converted``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_cnn import cli  # noqa: E402

if __name__ == "__main__":
    cli.main(["convert-weights", *sys.argv[1:]])
