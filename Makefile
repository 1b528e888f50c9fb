# Two entry points that work on a fresh machine with plain python3: `make demo` and `make test`.
# Both create .venv and install what is missing (re-run when setup.py changes).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= cpu,dev
PYTEST_ARGS ?= -n 2 --dist loadgroup

.PHONY: demo test test-all test-exports install clean goldens goldens-env docs

install: $(STAMP)

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# The main job: train LeNet-5 on the bundled digits, evaluate it, export it (SavedModel, TFLite float32 and int8,
# ONNX), all verified; outputs in saved_models/ (docs/index.md, "make demo"). Safe to re-run (a killed run resumes).
DEMO_MODEL := saved_models/lenet5
demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) apps/train.py --model lenet5 --option activation=relu --option pool=max \
		--translate 0.08 --rotate 0.03 --epochs 40 --output saved_models
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) apps/evaluate.py --model $(DEMO_MODEL).keras --per-class
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) apps/export.py --from $(DEMO_MODEL).keras --format savedmodel,tflite,onnx \
		--quantization none,int8 --overwrite --output saved_models --report $(DEMO_MODEL).report.json

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS) -m "not slow" tests

# The documentation (docs/, mkdocs.yml) into site/: the API reference is read from the docstrings without
# importing TensorFlow, so only the docs extra is installed (into .venv, beside what make install puts there).
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) -m mkdocs build --strict --site-dir site

# Everything, with the every-model export sweep run by test-exports.
test-all: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS) --deselect tests/test_export_all.py::test_exports_agree_with_keras tests
	$(MAKE) test-exports

# Each model's export test (SavedModel, TFLite, ONNX) in its own process, EXPORT_JOBS at a time: one long-lived
# pytest worker keeps memory from model to model (7-8 GB after ~15 of them), and the largest single export peaks
# at 11.5 GB (senet154). EXPORT_MODELS is a list_models() wildcard, e.g. "resnext*".
EXPORT_JOBS ?= 2
EXPORT_MODELS ?= *
test-exports: $(STAMP)
	set -o pipefail; TF_CPP_MIN_LOG_LEVEL=3 $(PY) -c "import sys, keras_cnn; names = keras_cnn.list_models(sys.argv[1]); \
		print(*names, sep='\n') if names else sys.exit(f'no model matches {sys.argv[1]!r}')" "$(EXPORT_MODELS)" \
		| xargs -P $(EXPORT_JOBS) -I{} $(PY) -m pytest -q -p no:cacheprovider -m "slow or not slow" \
		"tests/test_export_all.py::test_exports_agree_with_keras[{}]"

# Reference logits of torchvision/timm for the weight-converter tests (tests/goldens/, committed): a separate venv
# with torch, torchvision and timm (a few GB), never needed by `make test`. GOLDENS_ARGS, e.g.
# --only "timm:*" --force, selects and rewrites; without --force existing goldens are only re-checked.
REF_VENV ?= .venv-goldens
REF_STAMP := $(REF_VENV)/.installed
GOLDENS_ARGS ?=
goldens-env: $(REF_STAMP)

$(REF_STAMP): setup.py
	test -x $(REF_VENV)/bin/python || $(PYTHON) -m venv $(REF_VENV)
	$(REF_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(REF_VENV)/bin/python -m pip install --quiet -e ".[cpu,reference]"
	touch $(REF_STAMP)

goldens: $(REF_STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(REF_VENV)/bin/python tools/make_torch_sample.py
	TF_CPP_MIN_LOG_LEVEL=2 $(REF_VENV)/bin/python tools/make_goldens.py $(GOLDENS_ARGS)

clean:
	rm -rf $(VENV) $(REF_VENV) build *.egg-info .pytest_cache site
