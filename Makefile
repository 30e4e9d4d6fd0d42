# neuro_lib: every target bootstraps .venv first (idempotent: re-runs only when pyproject.toml changes).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= smoke
ARGS ?=

.PHONY: venv report overnight test test-fast lab bench clean-runs

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned to the CPU wheel so no CUDA build is pulled in
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (neuro_lib)" >/dev/null
	touch $(STAMP)

report: venv
	$(BIN)/neuro report --profile $(PROFILE) $(ARGS)

overnight: venv
	$(BIN)/neuro report --profile full $(ARGS)

test: venv
	$(BIN)/python -m pytest -q tests
	NEURO_PROGRESS=log $(BIN)/python -m pytest -q --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider notebooks

test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow" tests

lab: venv
	$(BIN)/jupyter lab notebooks

bench: venv
	$(BIN)/neuro bench lm $(ARGS)
