"""Evaluate a trained model or an export: exact metrics table, PR/ROC/confusion plots, JSON report.

Same as ``keras-cnn evaluate``; ``python apps/evaluate.py --help`` lists the flags. Example:
``python apps/evaluate.py --model saved_models/lenet5.keras --per-class``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_cnn import cli  # noqa: E402

if __name__ == "__main__":
    cli.main(["evaluate", *sys.argv[1:]])
