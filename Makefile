# couchcore: `make demo` and `make test` set everything up themselves on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=
# the checkout goes on sys.path through a plain .pth line, as an installed package's directory does; setuptools'
# default editable mode puts an import hook there instead, which costs every process ~10 ms (pathlib, re, ...)
# before its first line: a start-up cost users of an installed couchcore never pay (measured in bulk-r25.md);
# a setuptools without that (transitional) mode gets the default one
EDITABLE ?= --config-settings editable_mode=compat

.PHONY: demo test test-unit test-timing test-tornado-versions setup bench clean fuzz docs lint-docstrings

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel

# (re)install when the packaging or the Cython sources change
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml setup.py $(wildcard couchcore_ext/*.pyx couchcore_ext/*.py)
	$(PY) -m pip install --quiet cython setuptools wheel
	$(PY) -m pip install --quiet --no-build-isolation -e '.[dev]' $(EDITABLE) \
		|| $(PY) -m pip install --quiet --no-build-isolation -e '.[dev]'
	$(PY) -c "import couchcore; print('couchcore row parser backend:', couchcore.ROW_PARSER)"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(PY) examples/demo.py

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# the tests that need no server (tests/unit/: the protocol on recorded bytes, the parser, codec,
# scanner and feed state machine, fake loopback servers, the typed facades)
test-unit: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# the tests that assert a duration (@pytest.mark.timing: timeouts' lengths, linear time), left out of
# `make test` because a loaded machine can fail them; run them on a quiet one
test-timing: setup
	$(PY) -m pytest -m timing $(PYTEST_ARGS)

# backend="tornado" (couchcore/transport/tornado.py subclasses private Tornado names) on the oldest and the
# newest Tornado release pyproject.toml allows (tornado>=6.3,<6.7): TORNADO_OLDEST installed with pip --target
# into build/ and put first on PYTHONPATH, then the venv's own (the newest); the async facades' default backend
# made Tornado's (tests/tornado_default_backend.py) for the facade tests, and the backend-parametrized tests'
# tornado cases; against the suite's test server (PouchDB Server, or COUCHDB_URL). ~45 s for both here.
TORNADO_OLDEST ?= 6.3.3
TORNADO_OLDEST_DIR := build/tornado-$(TORNADO_OLDEST)
TORNADO_TESTS := tests/unit/test_tornado_version.py tests/unit/test_tornado_local.py tests/integration/test_tornado.py \
	tests/integration/test_tornado_example.py
# the tests parametrized over the backends (the transport table; tests/helpers.py async_backends()): -k tornado
TORNADO_CASES := tests/integration/test_aio.py tests/integration/test_transport_conformance.py \
	tests/integration/test_review_async.py tests/integration/test_review_server.py tests/integration/test_review_documents.py \
	$(addprefix tests/integration/test_review,2_r23.py _r23.py _r24.py _r25.py _r26.py _r27e.py _r28_left.py _r28b.py) \
	tests/integration/test_tornado_keepalive.py::test_the_tornado_backend_stays_selectable \
	tests/integration/test_tornado_keepalive.py::test_without_pycurl_the_async_facade_falls_back_to_tornado
test-tornado-versions: setup
	@[ -f $(TORNADO_OLDEST_DIR)/tornado/__init__.py ] || \
		$(PY) -m pip install --quiet --no-deps --target $(TORNADO_OLDEST_DIR) tornado==$(TORNADO_OLDEST)
	@status=0; base="$${PYTHONPATH:-}"; \
	for dir in $(abspath $(TORNADO_OLDEST_DIR)) ""; do \
		path="$$dir"; [ -z "$$base" ] || path="$${path:+$$path:}$$base"; \
		export PYTHONPATH="$$path"; \
		version=$$($(PY) -c "import tornado; print(tornado.version)") || exit 1; \
		echo "== Tornado $$version ($${dir:-the venv's})"; \
		export COUCHCORE_TEST_TORNADO_VERSION="$$version"; \
		[ -z "$$dir" ] || COUCHCORE_TEST_TORNADO_VERSION=$(TORNADO_OLDEST); \
		$(PY) -m pytest -q -p no:cacheprovider -p tests.tornado_default_backend $(TORNADO_TESTS) $(PYTEST_ARGS) || status=1; \
		$(PY) -m pytest -q -p no:cacheprovider -k tornado $(TORNADO_CASES) $(PYTEST_ARGS) || status=1; \
	done; exit $$status

# the harness, quick sizes, against a throw-away PouchDB Server (BENCH_ARGS="--url http://..." for a real one);
# tables, JSON and charts in benchmarks/results/latest/ (not tracked)
BENCH_ARGS ?=
bench: setup $(VENV)/.bench-installed
	$(PY) -m benchmarks run --quick $(BENCH_ARGS)

$(VENV)/.bench-installed: pyproject.toml
	$(PY) -m pip install --quiet --no-build-isolation -e '.[bench]' $(EDITABLE) \
		|| $(PY) -m pip install --quiet --no-build-isolation -e '.[bench]'
	touch $@

# the documentation (docs/, Sphinx): reference from the docstrings, guides from docs/examples/*.py
# (tests/integration/test_docs_guides.py runs those), CLI reference from the argument parsers; warnings are
# errors and every cross-reference is checked (-n). Open docs/_build/html/index.html.
docs: setup $(VENV)/.docs-installed
	$(PY) -m sphinx -W --keep-going -n -q -b html docs docs/_build/html

$(VENV)/.docs-installed: pyproject.toml
	$(PY) -m pip install --quiet --no-build-isolation -e '.[docs]' $(EDITABLE) \
		|| $(PY) -m pip install --quiet --no-build-isolation -e '.[docs]'
	touch $@

# the docstring rules (ruff's pydocstyle D rules, configured in pyproject.toml) on the public modules
lint-docstrings: setup
	$(PY) -m ruff check --quiet couchcore

clean:
	rm -rf build dist *.egg-info couchcore_ext/*.c couchcore_ext/*.so .pytest_cache docs/_build

# long fuzzing run: the property tests of tests/integration/test_fuzz.py with FUZZ_EXAMPLES examples each
# (Hypothesis profile "fuzz", registered in tests/conftest.py; 600 each took 6.6 min on this loaded
# 2-core box, atheris 100k runs ~100 s; the real-server round trips
# get a fiftieth), then the atheris harness of the Cython row parser when atheris installs
FUZZ_EXAMPLES ?= 600
ATHERIS_RUNS ?= 100000
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz COUCHCORE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/integration/test_fuzz.py -q \
		-p no:cacheprovider -o timeout=0 --hypothesis-show-statistics $(PYTEST_ARGS)
	@if $(PY) -m pip install --quiet atheris >/dev/null 2>&1; then \
		$(PY) tests/fuzz_rows_atheris.py -atheris_runs=$(ATHERIS_RUNS) -max_len=4096 -print_final_stats=1; \
	else echo "atheris does not install here: harness skipped"; fi
