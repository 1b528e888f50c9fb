"""Train a registered model with model.fit (data, recipes, callbacks, resume, tf.distribute).

Same as ``keras-cnn train``; ``python apps/train.py --help`` lists the flags. Example:
``python apps/train.py --model lenet5 --option pool=max --translate 0.08 --rotate 0.03``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_cnn import cli  # noqa: E402

if __name__ == "__main__":
    cli.main(["train", *sys.argv[1:]])
