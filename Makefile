# PHYS-555 contrastive learning course. Every target sets up .venv itself when it is missing or
# when pyproject.toml changed. On Windows without make, use the conda route in README.md.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.phys555-installed
NBVAL  := --nbval-lax --nbval-cell-timeout=300
export PYTHONUNBUFFERED := 1

.PHONY: help setup course test unit nbval lab notebooks update check record bench lint clean

help:
	@echo "make course     run every notebook (solution versions) headless: executed copies + HTML in build/course/"
	@echo "make test       unit tests, notebook freshness check, nbval on student and solution notebooks (fast mode)"
	@echo "make lab        open JupyterLab on notebooks/"
	@echo "make notebooks  rebuild the student notebooks from notebooks/source/"
	@echo "make update     take the new course version (git pull); notebooks you changed are backed up first"
	@echo "make record     record the output of the # NBVAL_CHECK_OUTPUT cells (after changing one)"
	@echo "make bench      run the benchmarks (installs the peer libraries of the 'bench' extra)"
	@echo "PHYS555_FAST=1 make course   runs everything on tiny sizes in a few minutes"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)
	@echo "Course environment ready in $(VENV)/"

notebooks: $(STAMP)
	$(BIN)/python -m phys555_cl.course build

update: $(STAMP)
	$(BIN)/python -m phys555_cl.course update

check: $(STAMP)
	$(BIN)/python -m phys555_cl.course check

record: $(STAMP)
	$(BIN)/python -m phys555_cl.course record

course: $(STAMP)
	$(BIN)/python -m phys555_cl.course build --no-student
	$(BIN)/python -m phys555_cl.course run --out build/course

unit: $(STAMP)
	PHYS555_FAST=1 PHYS555_QUIET=1 $(BIN)/python -m pytest -q tests

nbval: $(STAMP)
	rm -rf build/nbval
	$(BIN)/python -m phys555_cl.course nbval-copies --out build/nbval
	PHYS555_FAST=1 $(BIN)/python -m pytest -q -p no:cacheprovider $(NBVAL) build/nbval/student build/nbval/solutions

test: $(STAMP)
	$(BIN)/python -m phys555_cl.course check
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory nbval

lab: $(STAMP)
	$(BIN)/python -m jupyter lab notebooks/

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,bench]"
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

lint: $(STAMP)
	$(BIN)/python -m ruff check phys555_cl tests benchmarks

clean:
	rm -rf build
