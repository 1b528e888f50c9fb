"""Per-layer profile of a registered model: output shapes, parameters, MACs and activation memory (batch 1).

Same as ``keras-cnn profile``; ``python apps/profile.py --help`` lists the flags. Example:
``python apps/profile.py --model densenet121 --option memory_efficient=True --image-size 64``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_cnn import cli  # noqa: E402

if __name__ == "__main__":
    cli.main(["profile", *sys.argv[1:]])
