"""Printed tables and the JSON report (``<stem>.report.json``) that evaluate and export add to."""

import json
import math
import os

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
    """Update the JSON report at ``path`` with ``values`` (created when missing); returns the whole report."""
    report = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as file:
            report = json.load(file)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(report.get(key), dict):
            report[key] = {**report[key], **value}
        else:
            report[key] = value
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(report, file, indent=2, default=float)
    return report
