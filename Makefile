# The two commands a learner or a maintainer needs: `make lab` and `make test`.
# Both create .venv with python3 and install everything into it first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NBVAL_FLAGS := @notebooks/nbval.args

.PHONY: lab test lint test-package test-notebooks test-browser test-unprivileged test-without-userns \
	notebooks-check notebooks-run binder-check bench clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

# JupyterLab refuses to run as root unless told; learners are not root, containers often are.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(BIN)/jupyter lab --ip=127.0.0.1 --notebook-dir=notebooks $(ALLOW_ROOT)

test: lint notebooks-check test-package test-notebooks test-browser

lint: $(STAMP)
	$(BIN)/ruff check handshake_lab tests benchmarks tools notebooks
	$(BIN)/ruff format --check handshake_lab tests benchmarks tools

notebooks-check: $(STAMP)
	$(BIN)/python tools/notebooks.py check

test-package: $(STAMP)
	$(BIN)/python -m pytest -m "not browser" tests

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest $(NBVAL_FLAGS) notebooks

test-browser: $(STAMP)
	$(BIN)/python -m pytest -m browser -rs tests

# Re-runs the kernel tests and the notebooks as an unprivileged user (what Binder learners are).
test-unprivileged: $(STAMP)
	bash tools/run_unprivileged.sh

# The same user, where user namespaces are unavailable (as root: it takes them away in a child
# namespace): the saved-SYN tier must be chosen and notebook 05 pass.
test-without-userns: $(STAMP)
	bash tools/run_without_userns.sh

notebooks-run: $(STAMP)
	$(BIN)/python tools/notebooks.py run

binder-check: $(STAMP)
	bash tools/binder_check.sh

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
