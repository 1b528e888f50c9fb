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

demo: $(STAMP)
	$(PY) apps/train.py --model lenet5 --option activation=relu --option pool=max --output saved_models

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS) -m "not slow" tests

test-all: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS) tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
