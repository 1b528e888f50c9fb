"""Export a model to SavedModel (TF Serving), TFLite (LiteRT) and ONNX, each verified in its runtime.

Same as ``keras-cnn export``; ``python apps/export.py --help`` lists the flags. Example:
``python apps/export.py --from saved_models/lenet5.keras --quantization int8 --representative digits``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_cnn import cli  # noqa: E402

if __name__ == "__main__":
    cli.main(["export", *sys.argv[1:]])
