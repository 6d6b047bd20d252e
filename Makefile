# The stable interface of the project: `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
,      := ,

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

LOCK   := requirements/lock.txt

# Every install takes its versions from the lock (exact versions of every dependency, all extras;
# `make upgrade` refreshes it on purpose), so a fresh clone installs what the suite passed with.
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(LOCK) | $(VENV)/bin/python
	@echo "installing loanwatch with every dev extra into $(VENV) (versions from $(LOCK); first time: about 1.7 GB, 2-3 minutes)"
	@start=$$(date +%s); $(PIP) install --quiet -c $(LOCK) -e '.[dev]' && \
	  echo "installed in $$(( $$(date +%s) - start )) s"
	touch $@ $(VENV)/.installed-demo

# The demo needs the base install and the dashboard only (no Spark, PostgreSQL, browser, Dagster).
$(VENV)/.installed-demo: pyproject.toml $(LOCK) | $(VENV)/bin/python
	@echo "installing loanwatch and its dashboard into $(VENV) (versions from $(LOCK); first time: about 770 MB, under a minute)"
	@start=$$(date +%s); $(PIP) install --quiet -c $(LOCK) -e '.[dashboard]' && \
	  echo "installed in $$(( $$(date +%s) - start )) s"
	touch $@

install: $(VENV)/.installed ## create .venv and install loanwatch with its dev extras, at the lock's versions

upgrade: | $(VENV)/bin/python ## refresh the lock to the newest versions pyproject.toml allows, install them, run the suite
	$(PIP) install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --all-extras --upgrade --python-version 3.11 --no-header --annotation-style line -o $(LOCK)
	$(PIP) install --quiet -c $(LOCK) -e '.[dev]'
	touch $(VENV)/.installed $(VENV)/.installed-demo
	$(MAKE) test

demo: $(VENV)/.installed-demo ## set up (base + dashboard only), generate/split/ingest/build a sample portfolio, print the figures, then serve the dashboard
	$(BIN)/loanwatch demo
	$(BIN)/loanwatch dashboard

test: install lint ## set up, lint, then run the whole test suite (two workers, a file at a time each)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

test-fast: install ## the unit tier only (no dbt build, no browser, no server): under a minute
	$(BIN)/python -m pytest -q -m unit -n 2

lint: install ## ruff over the code and the tests (configured in pyproject.toml)
	$(BIN)/ruff check src tests benchmarks

docs: install ## rewrite the generated parts of the docs and the project (the report table of docs/reports.md, from the report registry; dbt_project.yml's vars, from the settings' defaults)
	$(BIN)/python -m loanwatch.reports.registry docs/reports.md
	$(BIN)/python -m loanwatch.transform

screenshots: install ## retake the dashboard's screenshots (1280x800, 1920x1080) and copy them, halved, into docs/img/dashboard
	$(BIN)/python -m pytest -q -p no:randomly tests/e2e/test_dashboard_committee.py -k every_page_at_both_sizes
	$(BIN)/python tests/e2e/shrink_screens.py

bench: install ## run the benchmarks (scales S and M by default; BENCH_SCALES="S M L") and write docs/benchmarks.md
	$(BIN)/python benchmarks/run.py $(if $(BENCH_SCALES),--scales "$(BENCH_SCALES)",)

bench-mapped: install ## mapped ingest (a "foreign" export of the M portfolio through a source mapping) against plain ingest of the same rows
	$(BIN)/python benchmarks/mapped.py $(if $(CLIENTS),--clients $(CLIENTS),)

bench-spark: install ## the M portfolio on DuckDB and on Spark (local[1], local[2]) side by side: ingest, full build, 1 % batch, filter query (CLIENTS; BASE=<commit>: Spark local[2] only, that commit then the working tree, paired)
	$(BIN)/python benchmarks/engines.py --engines '$(if $(BASE),spark:local[2],duckdb$(,)spark:local[1]$(,)spark:local[2])' --work .bench/spark $(if $(CLIENTS),--clients $(CLIENTS),) $(if $(BASE),--base $(BASE),)

bench-postgres: install ## the M portfolio on DuckDB and on a throwaway PostgreSQL server side by side: ingest, full build, 1 % batch, filter query (CLIENTS; BASE=<commit>: PostgreSQL only, that commit then the working tree, paired)
	$(BIN)/python benchmarks/engines.py --engines $(if $(BASE),postgres,duckdb$(,)postgres) $(if $(CLIENTS),--clients $(CLIENTS),) $(if $(BASE),--base $(BASE),)

bench-servicing: install ## the same portfolio with and without its servicing events (charges, waivers) side by side: full build, 1 % batch (CLIENTS, PAIRS, REUSE=1 keeps the generated files of the last run)
	$(BIN)/python benchmarks/servicing.py $(if $(CLIENTS),--clients $(CLIENTS),) --pairs $(or $(PAIRS),3) $(if $(REUSE),--reuse,)

bench-paired: install ## HEAD against BASE (a commit) side by side: full build, 1 % batch, queries (BENCH_SCALES, PAIRS)
	$(BIN)/python benchmarks/paired.py --base $(or $(BASE),HEAD) --scales "$(or $(BENCH_SCALES),S M)" --pairs $(or $(PAIRS),3)

clean: ## remove the virtualenv and local warehouses
	rm -rf $(VENV) loanwatch_home .pytest_cache test-artifacts

.PHONY: help install upgrade demo test test-fast lint docs screenshots bench bench-spark bench-postgres bench-mapped bench-paired bench-servicing clean
