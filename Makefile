# couchcore: `make demo` and `make test` set everything up themselves on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test setup bench clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel

# (re)install when the packaging or the Cython sources change
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml setup.py $(wildcard couchcore_ext/*.pyx couchcore_ext/*.py)
	$(PY) -m pip install --quiet cython setuptools wheel
	$(PY) -m pip install --quiet --no-build-isolation -e '.[dev]'
	$(PY) -c "import couchcore.rows as r; print('couchcore row parser backend:', r.BACKEND)"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(PY) examples/demo.py

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# the harness, quick sizes, against a throw-away PouchDB Server (BENCH_ARGS="--url http://..." for a real one);
# tables, JSON and charts in benchmarks/results/
BENCH_ARGS ?=
bench: setup $(VENV)/.bench-installed
	$(PY) -m benchmarks run --quick $(BENCH_ARGS)

$(VENV)/.bench-installed: pyproject.toml
	$(PY) -m pip install --quiet --no-build-isolation -e '.[bench]'
	touch $@

clean:
	rm -rf build dist *.egg-info couchcore_ext/*.c couchcore_ext/*.so .pytest_cache
