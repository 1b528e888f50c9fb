"""Printed tables and the JSON report (``<stem>.report.json``) that evaluate and export add to."""

import json
import math
import os

from keras_cnn import _files

HEADLINE = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_micro", "pr_auc_macro", "pr_auc_micro",
            "roc_auc_macro", "roc_auc_micro")


def table(headers, rows, left=(0,)):
    """Columns ``left`` aligned left, the others (numbers) right, as one string."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    left = {i % len(headers) for i in left}
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i in left else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value):
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def merge(path, values):
    """Update the JSON report at ``path`` with ``values`` (created when missing); returns the whole report. Read
    and written under the folder's lock, so two runs adding to one report both keep their figures."""
    with _files.publish_together(os.path.dirname(os.path.abspath(path))):
        report = {}
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as file:
                report = json.load(file)
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(report.get(key), dict):
                report[key] = {**report[key], **value}
            else:
                report[key] = value
        _files.write_text(path, json.dumps(report, indent=2, default=float))
    return report
