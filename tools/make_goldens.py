"""Reference logits of the upstream libraries for the weight-converter tests: ``make goldens``.

For every registered upstream checkpoint with a ``reference`` (torchvision/timm; keras.applications references
are computed in the tests themselves), this builds the upstream model with torch, loads seeded weights
(:mod:`keras_cnn.weights.synthetic`), sets realistic BatchNorm statistics by a calibration pass (cumulative
average over a batch of smooth random images, train mode), and writes ``tests/goldens/<source>/<name>.npz``: the
state-dict manifest (names and shapes), the calibrated statistics and the logits on the golden images. It then
converts the same checkpoint with keras_cnn and prints the relative logit error and the input dependence.

Needs torch, torchvision and timm (``make goldens-env``); ``make test`` never does. Usage:
``python tools/make_goldens.py [--only GLOB] [--force] [--check]``.
"""

import argparse
import fnmatch
import importlib
import json
import os
import sys
import tempfile

import torch  # noqa: I001  (torch, torchvision and timm before TensorFlow: the other order crashes)
import timm  # noqa: F401
import torchvision  # noqa: F401
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
GOLDENS = os.path.join(ROOT, "tests", "goldens")


def upstream_model(upstream):
    name, kwargs = upstream.reference, dict(upstream.reference_kwargs)
    if name.startswith("timm:"):
        import timm

        return timm.create_model(name[len("timm:"):], pretrained=False, **kwargs)
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)(weights=None, **kwargs)


def calibrate(model, batch):
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None  # cumulative average: the statistics of the calibration batch
    model.train()
    with torch.no_grad():
        model(batch)
    model.eval()


def compact(stats):
    """The statistics in float16 where they fit (half the size of the committed files); the reference logits are
    computed with these rounded values, so both sides use exactly the same numbers."""
    rounded = {}
    for name, value in stats.items():
        value = value.numpy().astype(np.float32)
        half = value.astype(np.float16)
        fits = np.all(np.isfinite(half)) and not np.any((half == 0) & (value != 0))
        rounded[name] = half if fits else value
    return rounded


def nchw(images):
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def golden(upstream, path):
    from keras_cnn.weights import synthetic

    torch.manual_seed(0)
    model = upstream_model(upstream)
    dtype = getattr(torch, upstream.golden_dtype)
    model = model.to(dtype)
    state = model.state_dict()
    manifest = [(name, list(value.shape)) for name, value in state.items()]
    values = synthetic.checkpoint(manifest)
    model.load_state_dict({name: torch.from_numpy(np.asarray(v)).to(state[name].dtype) for name, v in values.items()})
    size = upstream.golden_input
    calibrate(model, nchw(synthetic.images(size=size, **synthetic.CALIBRATION_IMAGES)).to(dtype))
    stats = compact({name: value for name, value in model.state_dict().items()
                     if synthetic.is_statistic(name) and not name.endswith("num_batches_tracked")})
    model.load_state_dict({**model.state_dict(), **{k: torch.from_numpy(v.astype(np.float64)).to(dtype)
                                                    for k, v in stats.items()}})
    with torch.no_grad():
        logits = model(nchw(synthetic.images(size=size, **synthetic.GOLDEN_IMAGES)).to(dtype))
    logits = (logits[0] if isinstance(logits, tuple) else logits).numpy()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".partial.npz"  # written whole, then moved: an interrupted run leaves no half golden
    np.savez_compressed(partial, manifest=np.array(json.dumps(manifest)), logits=logits.astype(upstream.golden_dtype),
                        size=np.array(size), **{f"stat:{k}": v for k, v in stats.items()})
    os.replace(partial, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="*", help="glob over 'source:name' (default: all)")
    parser.add_argument("--force", action="store_true", help="rewrite existing golden files")
    parser.add_argument("--check", action="store_true", help="only convert and compare existing goldens")
    args = parser.parse_args(argv)
    import keras_cnn  # noqa: F401  (after torch)
    from keras_cnn.weights import synthetic, upstreams

    failures = 0
    for upstream in upstreams():
        if upstream.reference is None or not fnmatch.fnmatch(upstream.key, args.only):
            continue
        path = os.path.join(GOLDENS, upstream.source, f"{upstream.name}.npz")
        if not args.check and (args.force or not os.path.exists(path)):
            golden(upstream, path)
        if not os.path.exists(path):
            continue
        with tempfile.TemporaryDirectory() as folder:
            try:
                actual, reference = synthetic.converted_logits(upstream, path, folder)
            except Exception as error:  # report every model, then fail
                print(f"FAIL {upstream.key:45s} {type(error).__name__}: {str(error)[:300]}", flush=True)
                failures += 1
                continue
        error, spread = synthetic.relative_error(actual, reference), synthetic.input_dependence(reference)
        ok = error <= 1e-4 and spread >= 0.05
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {upstream.key:45s} error {error:.2e}  input dependence {spread:.2f}  "
              f"{os.path.getsize(path) / 1e3:.0f} kB", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
