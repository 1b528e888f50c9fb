# Two entry points that work on a fresh machine with plain python3: `make demo` and `make test`.
# Both create .venv and install what is missing (re-run when setup.py changes).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= cpu,dev
PYTEST_ARGS ?= -n 2 --dist loadgroup

.PHONY: demo test test-all install clean

install: $(STAMP)

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# The main job: train LeNet-5 on the bundled digits, evaluate it, export it (SavedModel, TFLite float32 and int8,
# ONNX), all verified; outputs in saved_models/ (see README "Apps"). Safe to re-run (a killed run resumes).
DEMO_MODEL := saved_models/lenet5
demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) apps/train.py --model lenet5 --option activation=relu --option pool=max \
		--translate 0.08 --rotate 0.03 --epochs 40 --output saved_models
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) apps/evaluate.py --model $(DEMO_MODEL).keras --per-class
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) apps/export.py --from $(DEMO_MODEL).keras --format savedmodel,tflite,onnx \
		--quantization none,int8 --overwrite --output saved_models --report $(DEMO_MODEL).report.json

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS) -m "not slow" tests

test-all: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS) tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
