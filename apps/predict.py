"""Top-k classes of image files or folders, from a .keras model, a SavedModel, a .tflite or an .onnx file.

Same as ``keras-cnn predict``; ``python apps/predict.py --help`` lists the flags. Example:
``python apps/predict.py --model saved_models/lenet5.onnx --top-k 3 my_digits/``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_cnn import cli  # noqa: E402

if __name__ == "__main__":
    cli.main(["predict", *sys.argv[1:]])
