"""Every upstream checkpoint with reference logits (tests/goldens/<source>/<name>.npz, written by ``make goldens``
from torchvision/timm with seeded weights and calibrated BatchNorm statistics): the converted keras_cnn model
computes the upstream function, max |logit difference| / max |logit| <= 1e-4 (issue #17's acceptance figure), on
images whose logits depend on the input. No torch needed: the checkpoint is regenerated from the golden's
manifest and statistics (:mod:`keras_cnn.weights.synthetic`)."""

import os

import pytest

import keras_cnn  # noqa: F401  (registers the families)
from keras_cnn.weights import synthetic, upstreams

GOLDENS = os.path.join(os.path.dirname(__file__), "goldens")
TOLERANCE = {"float32": 1e-4, "float64": 1e-9}  # float64 goldens (Inception-v4): the conversion is exact
MIN_INPUT_DEPENDENCE = 0.05


def golden_path(upstream):
    return os.path.join(GOLDENS, upstream.source, f"{upstream.name}.npz")


def golden_params():
    found = [u for u in upstreams() if u.reference and os.path.exists(golden_path(u))]
    return [pytest.param(u, id=u.key, marks=[pytest.mark.xdist_group(u.key)] + ([pytest.mark.slow] if u.slow else []))
            for u in found]


@pytest.mark.parametrize("upstream", golden_params())
def test_converted_checkpoint_computes_the_upstream_function(upstream, tmp_path):
    actual, reference = synthetic.converted_logits(upstream, golden_path(upstream), str(tmp_path))
    assert synthetic.input_dependence(reference) >= MIN_INPUT_DEPENDENCE
    assert synthetic.relative_error(actual, reference) <= TOLERANCE[upstream.golden_dtype]


def test_every_torch_upstream_has_reference_logits():
    """A registered torchvision/timm checkpoint without a golden would be an unverified row."""
    missing = [u.key for u in upstreams() if u.source != "keras.applications"
               and (u.reference is None or not os.path.exists(golden_path(u)))]
    assert not missing, f"run `make goldens` for: {missing}"
