# metalbench front door. `make bench` and `make test` create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BENCH := $(VENV)/bin/bench
EXTRAS ?= all,dev
ARGS ?=
PYTEST_ARGS ?=
ifeq ($(shell uname -s),Linux)
CONSTRAINTS := -c constraints/linux-cpu.txt
endif

.PHONY: bench test env clean

$(VENV)/.installed: pyproject.toml constraints/linux-cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(CONSTRAINTS) -e '.[$(EXTRAS)]'
	touch $@

## bench: run the quick suite on every installed framework; writes results/<run-id>.parquet
bench: $(VENV)/.installed
	$(BENCH) run --suite quick $(ARGS)

## test: the test suite (what CI runs)
test: $(VENV)/.installed
	$(PY) -m pytest -q $(PYTEST_ARGS)

env: $(VENV)/.installed
	$(BENCH) env

clean:
	rm -rf results/*.logs reports/*.html .pytest_cache
