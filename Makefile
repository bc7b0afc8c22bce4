# PHYS-555 contrastive learning course. Every target sets up .venv itself when it is missing or
# when pyproject.toml changed. On Windows without make, use the conda route in README.md.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.phys555-installed
NBVAL  := --nbval-lax --nbval-cell-timeout=300
# The exact versions `make test` last passed with; `make setup CONSTRAINTS=` installs without
# them (the newest versions within pyproject.toml's ranges), as `make latest` does.
CONSTRAINTS ?= constraints.txt
LATEST_VENV ?= .venv-latest
export PYTHONUNBUFFERED := 1

.PHONY: help setup course test unit nbval lab notebooks update check record bench lint clean \
        latest constraints

help:
	@echo "make course     run every notebook (solution versions) headless: executed copies + HTML in build/course/"
	@echo "make test       unit tests, notebook freshness check, nbval on student and solution notebooks (fast mode)"
	@echo "make lab        open JupyterLab on notebooks/"
	@echo "make notebooks  rebuild the student notebooks from notebooks/source/"
	@echo "make update     take the new course version (git pull); notebooks you changed are backed up first"
	@echo "make record     record the output of the # NBVAL_CHECK_OUTPUT cells (after changing one)"
	@echo "make bench      run the benchmarks (installs the peer libraries of the 'bench' extra)"
	@echo "make latest     the newest versions within pyproject.toml's ranges, in $(LATEST_VENV)/, then make test"
	@echo "make constraints  write the versions installed in $(VENV)/ to constraints.txt"
	@echo "PHYS555_FAST=1 make course   runs everything on tiny sizes in a few minutes"

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(PIP_FLAGS) -e ".[dev]" \
		$(if $(CONSTRAINTS),-c $(CONSTRAINTS))
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

# LAB_ARGS: more JupyterLab options, e.g. make lab LAB_ARGS="--no-browser --port=8890"
lab: $(STAMP)
	$(BIN)/python -m jupyter lab notebooks/ $(LAB_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,bench]" \
		$(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

lint: $(STAMP)
	$(BIN)/python -m ruff check phys555_cl tests benchmarks

# A separate environment, so the tested one in .venv stays as it is: every package is upgraded
# to the newest release pyproject.toml admits, then the whole test suite runs. CI runs this
# every week (.github/workflows/latest.yml), so a breaking release shows up there first.
latest:
	@rm -f $(LATEST_VENV)/.phys555-installed
	$(MAKE) --no-print-directory test VENV=$(LATEST_VENV) CONSTRAINTS= \
		PIP_FLAGS="--upgrade --upgrade-strategy eager"
	@echo "The newest versions pass. To make them the tested ones: make constraints VENV=$(LATEST_VENV)"

# Pin what is installed in $(VENV) (after a passing `make test` there); keeps the header.
constraints: $(STAMP)
	@{ grep '^#' constraints.txt; \
	   $(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^#'; \
	 } > constraints.txt.new && mv constraints.txt.new constraints.txt
	@echo "wrote constraints.txt from $(VENV)/; update the versions in environment.yml to match" \
	      "(tests/test_packaging.py says which)"

clean:
	rm -rf build
