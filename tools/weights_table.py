"""Print the coverage table of docs/weights.md of upstream checkpoints from the catalog (keras_cnn.weights.upstreams()):
each registered model x torchvision / timm / keras.applications, with the upstream name and how it is verified.

``python tools/weights_table.py`` (no torch needed)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GOLDENS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "goldens")


def cell(upstream):
    if upstream.source == "keras.applications":
        how = "keras test"
    else:
        exists = os.path.exists(os.path.join(GOLDENS, upstream.source, f"{upstream.name}.npz"))
        how = "golden" if exists else "**unverified**"
    return f"`{upstream.name}` ({how}{', slow' if upstream.slow else ''})"


def main():
    import keras_cnn
    from keras_cnn.weights import _catalog

    sources = _catalog.SOURCES
    rows = []
    for model in keras_cnn.list_models():
        cells = []
        for source in sources:
            found = [cell(u) for u in _catalog.upstreams(model=model, source=source)]
            cells.append("<br>".join(found) or "-")
        if any(c != "-" for c in cells):
            rows.append(f"| `{model}` | " + " | ".join(cells) + " |")
    print("| keras_cnn model | " + " | ".join(sources) + " |")
    print("|---|" + "---|" * len(sources))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
