# metalbench front door. `make bench` and `make test` create .venv when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
BENCH := $(VENV)/bin/bench
ARGS ?=
PYTEST_ARGS ?=

# Where the frameworks live (docs/environments.md). Linux and the rest: one .venv with
# every framework. macOS arm64: the Metal plugins pin old stacks (jax-metal needs jax 0.5.0,
# tensorflow-metal stops at TF 2.19 and Python 3.12), so .venv holds the engine only and
# each framework gets .venv-<framework>, pinned by locks/macos-arm64-<framework>.txt; the
# runner starts that framework's workers with that environment's interpreter.
# JAX's Metal plugin on macOS: jax-mps (community, maintained, jax 0.11; the default) or jax-metal
# (Apple's, unmaintained, jax 0.5.0, reported broken on current macOS: jax#34109):
# `make bench JAX_PLUGIN=jax-metal`. Each has its own environment and lock.
JAX_PLUGIN ?= jax-mps
JAX_PLUGINS := jax-metal jax-mps
ifeq ($(filter $(JAX_PLUGIN),$(JAX_PLUGINS)),)
$(error JAX_PLUGIN=$(JAX_PLUGIN) is not one of: $(JAX_PLUGINS))
endif
JAX_ENV := $(if $(filter jax-mps,$(JAX_PLUGIN)),jax-mps,jax)
PLATFORM := $(shell uname -s)-$(shell uname -m)
ifeq ($(PLATFORM),Darwin-arm64)
# A Mac is measured on Metal: a framework that cannot reach it gives error rows naming why (and
# `make doctor` says more), never CPU rows beside the others' Metal rows. DEVICE=cpu or auto to override.
DEVICE ?= metal
PYTHON ?= python3.12
EXTRAS ?= report,dev,docs
INSTALL_LOCK := locks/macos-arm64-engine.txt
FRAMEWORK_ENVS := torch tensorflow $(JAX_ENV) mlx
else
DEVICE ?= auto
PYTHON ?= python3
# reference: transformers and mlx-lm, for `bench run --reference` and the tests of its rows (CI runs them)
EXTRAS ?= all,dev,docs,reference
INSTALL_LOCK := $(if $(filter Linux-%,$(PLATFORM)),constraints/linux-cpu.txt)
FRAMEWORK_ENVS :=
endif
CONSTRAINTS := $(if $(INSTALL_LOCK),-c $(INSTALL_LOCK))
FRAMEWORK_VENVS := $(FRAMEWORK_ENVS:%=.venv-%/.installed)
# --python <framework>=.venv-<env>/bin/python (the env jax-mps serves the framework jax)
RUN_PYTHONS := $(foreach env,$(FRAMEWORK_ENVS),--python $(firstword $(subst -, ,$(env)))=.venv-$(env)/bin/python)

.PHONY: bench test report env clean gate baseline doctor docs

$(VENV)/.installed: pyproject.toml $(INSTALL_LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(CONSTRAINTS) -e '.[$(EXTRAS)]'
	touch $@

# macOS arm64 only: .venv-<framework> holds metalbench[<framework>] at its lock's versions.
.venv-%/.installed: pyproject.toml locks/macos-arm64-%.txt
	test -x .venv-$*/bin/python || $(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --disable-pip-version-check -c locks/macos-arm64-$*.txt -e '.[$*,energy]'
	touch $@

## bench: run the quick suite on every installed framework; writes results/<run-id>.parquet and reports/index.html
bench: $(VENV)/.installed $(FRAMEWORK_VENVS)
	$(BENCH) run --suite quick --device $(DEVICE) $(RUN_PYTHONS) $(ARGS)
	$(BENCH) report results -o reports

## report: render reports/index.html from every run in results/ (open it, or: bench report --serve)
report: $(VENV)/.installed
	$(BENCH) report results -o reports

## test: the test suite (what CI runs)
test: $(VENV)/.installed
	$(PY) -m pytest -q $(PYTEST_ARGS)

## docs: the documentation site (mkdocs.yml, docs/) → site/index.html; strict: any warning or broken link fails
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

env: $(VENV)/.installed $(FRAMEWORK_VENVS)
	$(BENCH) env --device $(DEVICE) $(RUN_PYTHONS)

## doctor: what works here, per framework and backend, with the self-checks (paste its table into an issue).
## Exit 0 all usable, 1 degraded, 2 nothing usable.
doctor: $(VENV)/.installed $(FRAMEWORK_VENVS)
	$(BENCH) doctor --device $(DEVICE) $(RUN_PYTHONS) $(ARGS)

## baseline: one quick-suite run of BASELINE_PROCESSES fresh processes per framework → results/baselines/<machine>.parquet; commit it
# The gate's unit is the process: `bench run --processes N` starts N fresh workers per framework,
# interleaved across frameworks, each giving every case one figure; the baseline's between-process
# spread sets each case's bar (docs/gate.md, docs/processes.md). 3 + 2 processes: what fits the 10
# minutes the gate is allowed on the 2-core VM; more buy sensitivity (docs/gate.md).
BASELINE_PROCESSES ?= 3
GATE_PROCESSES ?= 2
# Single-threaded, and a short sampling budget per process: on a shared runner a multi-threaded pool
# turns a neighbour's load into 5-120x stalls, and a process's median needs few samples, while the
# number of processes is what the test's power rests on.
# --timing queued: the gate reads the headline (queued) figure only; latency would add a fifth to each run.
GATE_RUN_ARGS ?= --threads 1 --budget 0.3 --timing queued
# Each invocation writes its run into a folder of its own, deletes nothing, and reads only the files it
# wrote: a folder that already holds any results file is refused (an old run there would otherwise be
# counted as more processes of this baseline or gate).
STAMP := $(shell date -u +%Y%m%dT%H%M%SZ)
BASELINE_RUNS_DIR ?= results/baseline-runs/$(STAMP)
baseline: $(VENV)/.installed $(FRAMEWORK_VENVS)
	@if [ -n "$$(find $(BASELINE_RUNS_DIR) -name '*.parquet' 2>/dev/null | head -1)" ]; then \
	  echo "make baseline: $(BASELINE_RUNS_DIR) already holds results files; pass BASELINE_RUNS_DIR=<a new folder>"; exit 2; fi
	$(BENCH) run --suite quick --device $(DEVICE) $(RUN_PYTHONS) $(GATE_RUN_ARGS) --processes $(BASELINE_PROCESSES) --out $(BASELINE_RUNS_DIR) --run-id baseline-$(STAMP) $(ARGS)
	$(BENCH) baseline $(BASELINE_RUNS_DIR)/baseline-$(STAMP).parquet

## gate: one quick-suite run of GATE_PROCESSES fresh processes vs the committed baselines of this machine (exit 1 on
## a regression, 2 when it cannot judge). Markdown in results/gate/<time>/summary.md (CI: GATE_DIR=results/gate). GATE_ARGS="--threshold 10%"
GATE_DIR ?= results/gate/$(STAMP)
GATE_ARGS ?=
# An alarm is confirmed before the gate goes red: the slower cases alone, in GATE_CONFIRM more
# fresh processes each, then the whole comparison again (bench/confirm.py; 0: no confirmation).
GATE_CONFIRM ?= 2
gate: $(VENV)/.installed $(FRAMEWORK_VENVS)
	@if [ -n "$$(find $(GATE_DIR) -name '*.parquet' 2>/dev/null | head -1)" ]; then \
	  echo "make gate: $(GATE_DIR) already holds results files; pass GATE_DIR=<a new folder>"; exit 2; fi
	$(BENCH) run --suite quick --device $(DEVICE) $(RUN_PYTHONS) $(GATE_RUN_ARGS) --processes $(GATE_PROCESSES) --out $(GATE_DIR) --run-id gate-$(STAMP) $(ARGS)
	rc=0; $(BENCH) compare results/baselines $(GATE_DIR)/gate-$(STAMP).parquet --json $(GATE_DIR)/first.json --spread baseline $(GATE_ARGS) > $(GATE_DIR)/first.txt || rc=$$?; \
	if [ $$rc -eq 1 ] && [ $(GATE_CONFIRM) -gt 0 ]; then \
	  echo "gate: slower cases; confirming them in $(GATE_CONFIRM) more fresh processes each (first verdicts: $(GATE_DIR)/first.txt)"; \
	  $(PY) -m bench.confirm $(GATE_DIR)/first.json --runs $(GATE_CONFIRM) --out $(GATE_DIR) -- --device $(DEVICE) $(RUN_PYTHONS) $(GATE_RUN_ARGS) $(ARGS) || exit $$?; fi
	$(BENCH) compare results/baselines $(GATE_DIR)/gate-$(STAMP).parquet $$(find $(GATE_DIR) -maxdepth 1 -name 'confirm-*.parquet' | sort) \
	  --markdown $(GATE_DIR)/summary.md --json $(GATE_DIR)/summary.json $(GATE_ARGS)

## locks: re-resolve locks/*.txt after a dependency change (needs uv: pip install uv)
.PHONY: locks
locks: $(VENV)/.installed
	$(PY) scripts/lock.py

clean:
	rm -rf results/*.logs reports/*.html reports/data .pytest_cache
