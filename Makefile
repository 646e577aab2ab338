# The two commands a learner or a maintainer needs: `make lab` and `make test`.
# Both create .venv with python3 first. `make lab` installs what a learner needs
# (requirements.txt); `make test` adds the test tools (requirements-dev.txt: pytest, nbval, ruff,
# playwright). Both install the course's settings (lab-settings/) into .venv.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LAB_STAMP := $(VENV)/.installed-lab
DEV_STAMP := $(VENV)/.installed-dev
NBVAL_FLAGS := @notebooks/nbval.args

.PHONY: lab test lint test-package test-notebooks test-browser test-unprivileged test-without-userns test-platforms \
	notebooks-check notebooks-run binder-check bench stress clean

$(LAB_STAMP): requirements.txt pyproject.toml lab-settings/overrides.json \
		lab-settings/ipython_kernel_config.py tools/install_lab_settings.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	bash tools/install_lab_settings.sh $(BIN)/python
	touch $(LAB_STAMP)

$(DEV_STAMP): $(LAB_STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

# JupyterLab refuses to run as root unless told; learners are not root, containers often are.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

# Opens the first notebook, not the file list (the URL it prints goes there too).
lab: $(LAB_STAMP)
	$(BIN)/jupyter lab --ip=127.0.0.1 --notebook-dir=notebooks \
		--LabApp.default_url=/lab/tree/00-start-here.ipynb $(ALLOW_ROOT)

test: lint notebooks-check test-package test-notebooks test-browser

lint: $(DEV_STAMP)
	$(BIN)/ruff check handshake_lab tests benchmarks tools
	$(BIN)/python tools/notebooks.py lint
	$(BIN)/ruff format --check handshake_lab tests benchmarks tools

notebooks-check: $(DEV_STAMP)
	$(BIN)/python tools/notebooks.py check

test-package: $(DEV_STAMP)
	$(BIN)/python -m pytest -m "not browser" tests

test-notebooks: $(DEV_STAMP)
	$(BIN)/python -m pytest $(NBVAL_FLAGS) notebooks

test-browser: $(DEV_STAMP)
	$(BIN)/python -m pytest -m browser -rs tests

# Re-runs the kernel tests and the notebooks as an unprivileged user (what Binder learners are).
test-unprivileged: $(DEV_STAMP)
	bash tools/run_unprivileged.sh

# The same user, where user namespaces are unavailable (as root: it takes them away in a child
# namespace): the saved-SYN tier must be chosen and notebook 05 pass.
test-without-userns: $(DEV_STAMP)
	bash tools/run_without_userns.sh

# The notebooks run as on macOS and on Windows (HANDSHAKE_LAB_PLATFORM): each must complete, its
# Linux-only cells saying so.
test-platforms: $(DEV_STAMP)
	$(BIN)/python tools/notebooks.py simulate darwin windows

notebooks-run: $(DEV_STAMP)
	$(BIN)/python tools/notebooks.py run

binder-check: $(DEV_STAMP)
	bash tools/binder_check.sh

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/run_all.py

# The flake harness: both suites STRESS_QUIET times, then STRESS_LOADED times with every core busy.
STRESS_QUIET ?= 20
STRESS_LOADED ?= 10
stress: $(DEV_STAMP)
	$(BIN)/python tools/stress.py --quiet-rounds $(STRESS_QUIET) --loaded-rounds $(STRESS_LOADED)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
