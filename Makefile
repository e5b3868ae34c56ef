# Every target does its own set-up: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# numba (used by UMAP) compiles on first use; a persistent cache makes later starts fast.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba

.PHONY: setup run test test-unit test-dashboard test-e2e bench assets clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: setup
	$(BIN)/equiscope serve --dataset adult

test: setup
	$(BIN)/python -m pytest tests -q --durations=30

test-unit: setup
	$(BIN)/python -m pytest tests/unit -q

test-dashboard: setup
	$(BIN)/python -m pytest tests/dashboard -q

test-e2e: setup
	$(BIN)/python -m pytest tests/e2e -q

bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

# Rebuild assets/ from the raw files in ../shared/datasets (not needed to run or test).
assets: setup
	$(BIN)/python scripts/build_assets.py --raw ../shared/datasets --out assets

clean:
	rm -rf $(VENV) .cache .pytest_cache
