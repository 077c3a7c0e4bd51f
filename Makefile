# deskprof — every target bootstraps .venv on first use (Python 3.11+ on PATH).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv demo test test-fast lint format lab bench lock clean

help:
	@echo "make demo   - start the reference OpenDesk, capture under load, analyse, write a report"
	@echo "make test   - lint + the whole test suite (unit, integration, notebooks)"
	@echo "make test-fast - lint + the unit tests (under a minute; no services, no tools)"
	@echo "make lab    - JupyterLab on 127.0.0.1 with the notebooks"
	@echo "make bench  - benchmarks, printed as side-by-side ratios"

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "deskprof needs Python 3.11+ (found " + sys.version.split()[0] + ")")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/deskprof demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/python scripts/strip_notebooks.py

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# the quick loop while editing: no services, no profilers, no notebooks
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -m "not integration and not slow" tests/unit $(PYTEST_ARGS)

# as root (containers, CI machines) Jupyter refuses to start without --allow-root
lab: $(STAMP)
	$(BIN)/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks \
		$$([ "$$(id -u)" = 0 ] && echo --allow-root)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^deskprof' > constraints.tmp
	( echo '# Exact versions `make` installs (pip install -c constraints.txt).'; \
	  echo '# Regenerate: make lock   (pip freeze of a fresh .venv, minus this project)'; \
	  cat constraints.tmp ) > constraints.txt && rm constraints.tmp

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
