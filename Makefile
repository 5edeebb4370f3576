# Deep Learning Optimization, Hands-On: build the book, run the tests.
#
#   make book                  build the HTML book in _build/html, executing every notebook
#   make test                  unit tests, every notebook through nbval, a build check, workflow check
#   make test-one NB=<path>    run one notebook through nbval (and time it)
#   make test-site [SITE=dir]  check a built site (after make book or make check-book)
#   make bench                 every benchmark (companion/benchmarks): _build/results.json, for the Results page
#   make release               students' versions of every part in release/ (nbgrader)
#   make grade SUBMISSIONS=dir autograde <student>/<part>/<chapter>.ipynb files: feedback/, grades.csv
#   make grades                grades.csv again after manual grading (nothing re-run)
#   make notebooks             regenerate every book/**/*.ipynb from its jupytext .py source
#   make fork REPO=owner/name  point badges and setup cells at a fork ([REF=branch or tag])
#   make clean                 remove build outputs (keeps .venv; `make distclean` removes it too)
#
# Every target creates .venv from requirements.txt first (once; again when requirements.txt or
# pyproject.toml change).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUILD_DIR := _build
CHECK_DIR := $(BUILD_DIR)/check

# Seconds one notebook cell may run, and how long nbval waits for a finished cell's outputs.
CELL_TIMEOUT ?= 600
OUTPUT_TIMEOUT ?= 120
KERNEL_STARTUP_TIMEOUT ?= 120

# Reproducible, quiet, headless runs.
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0
export TF_CPP_MIN_LOG_LEVEL := 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# Progress bars are not content: no tqdm frames in the built pages (companion/progress.py).
export COMPANION_PROGRESS := 0
# A pre-seeded data folder (a classroom, an offline machine, CI): set COMPANION_DATA_DIR, or place it
# at ../shared/data. Every loader reads it first; Keras finds the weights and data sets of its keras/
# folder through KERAS_HOME, which is then _build/keras-home, whose models/ and datasets/ link there
# (Keras writes keras.json into KERAS_HOME, so it cannot be the read-only folder itself). A
# KERAS_HOME set in the environment is kept as it is.
COMPANION_DATA_DIR ?= $(wildcard $(abspath ../shared/data))
ifneq ($(strip $(COMPANION_DATA_DIR)),)
export COMPANION_DATA_DIR
ifeq ($(origin KERAS_HOME),undefined)
ifneq ($(wildcard $(COMPANION_DATA_DIR)/keras),)
export KERAS_HOME := $(abspath $(BUILD_DIR)/keras-home)
SEEDED_KERAS := $(KERAS_HOME)/.seeded
endif
endif
endif
# Jupyter kernels (book build, nbval) draw figures inline: with the Agg backend a notebook's
# figures would be missing from the book.
KERNEL_ENV := MPLBACKEND=module://matplotlib_inline.backend_inline

NBVAL := $(BIN)/python -m pytest --nbval-lax --nbval-current-env \
	--nbval-cell-timeout=$(CELL_TIMEOUT) --nbval-output-timeout=$(OUTPUT_TIMEOUT) \
	--nbval-kernel-startup-timeout=$(KERNEL_STARTUP_TIMEOUT) -p no:cacheprovider

# Chapter notebooks and their jupytext sources, found at run time.
FIND_NOTEBOOKS := find book -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' -not -path '*/_build/*' | LC_ALL=C sort
FIND_SOURCES := find book -mindepth 2 -name '[0-9][0-9]_*.py' -not -path '*/.ipynb_checkpoints/*' | LC_ALL=C sort

.PHONY: help venv book bench test test-unit test-notebooks test-one test-site check-book check-workflows release grade grades notebooks fork clean distclean

help:
	@sed -n '3,16s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

## Environment ---------------------------------------------------------------------------------

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install -e . --no-deps
	@touch $@

$(SEEDED_KERAS):
	@mkdir -p "$(KERAS_HOME)"
	@for entry in models datasets; do \
		if [ -e "$(COMPANION_DATA_DIR)/keras/$$entry" ]; then ln -sfn "$(COMPANION_DATA_DIR)/keras/$$entry" "$(KERAS_HOME)/$$entry"; fi; \
	done
	@touch $@
	@echo "Seeded data: COMPANION_DATA_DIR=$(COMPANION_DATA_DIR), KERAS_HOME=$(KERAS_HOME)"

## Book ----------------------------------------------------------------------------------------

book: $(STAMP) $(SEEDED_KERAS)
	$(KERNEL_ENV) $(BIN)/jupyter-book build . -W -n --keep-going
	$(MAKE) test-site SITE=$(BUILD_DIR)/html
	@echo "Open $(BUILD_DIR)/html/index.html"

# The speed and size figures that need more than a chapter's minutes, each with its targets; exits 1
# when a target fails. Run it before `make book` and the book's Results page shows what it measured.
bench: $(STAMP) $(SEEDED_KERAS)
	$(BIN)/python -m companion.bench all --json $(BUILD_DIR)/results.json

## Tests ---------------------------------------------------------------------------------------

test: $(STAMP) $(SEEDED_KERAS)
	$(MAKE) test-unit
	$(MAKE) check-workflows
	$(MAKE) check-book
	$(MAKE) test-notebooks

# pytest exits with 5 when it collects no test: not an error here.
test-unit: $(STAMP) $(SEEDED_KERAS)
	$(BIN)/python -m pytest tests/ --ignore=tests/site || [ $$? -eq 5 ]

test-notebooks: $(STAMP) $(SEEDED_KERAS)
	@notebooks="$$($(FIND_NOTEBOOKS))"; \
	if [ -z "$$notebooks" ]; then \
		echo "No notebook under book/ yet: nothing for nbval to run."; \
	else \
		echo "nbval: $$(echo "$$notebooks" | wc -l) notebook(s)"; \
		$(KERNEL_ENV) $(NBVAL) --durations=10 $$notebooks || [ $$? -eq 5 ]; \
	fi

test-one: $(STAMP) $(SEEDED_KERAS)
	@if [ -z "$(NB)" ]; then echo "usage: make test-one NB=book/part1_optimizers/01_gradient_descent.ipynb" >&2; exit 2; fi
	@test -f "$(NB)" || { echo "no such notebook: $(NB)" >&2; exit 2; }
	$(KERNEL_ENV) $(NBVAL) --durations=5 "$(NB)"

# The book's configuration, toc, links and references: the same build as `make book` with
# execution turned off (a copy of _config.yml with execute_notebooks: off), so it takes seconds.
check-book: $(STAMP)
	@rm -rf $(CHECK_DIR) && mkdir -p $(CHECK_DIR)
	@$(BIN)/python -c "$$CHECK_CONFIG" _config.yml $(CHECK_DIR)/_config.yml
	$(BIN)/jupyter-book build . --config $(CHECK_DIR)/_config.yml --path-output $(CHECK_DIR) \
		-W -n --keep-going --quiet
	$(MAKE) test-site SITE=$(CHECK_DIR)/_build/html

# The built pages as a reader gets them (tests/site): answers folded, no hidden test, the Colab link,
# and on an executed build no start-up log, progress bar or build-machine path in the outputs.
SITE ?= $(BUILD_DIR)/html
test-site: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
		echo "*** WARNING: no chromium/chromedriver: the site test in a browser is SKIPPED (apt-get install chromium chromium-driver) ***"
	COURSE_SITE=$(SITE) $(BIN)/python -m pytest tests/site -p no:cacheprovider -q -ra

define CHECK_CONFIG
import os, sys, yaml
with open(sys.argv[1], encoding="utf-8") as f:
    config = yaml.safe_load(f)
config.setdefault("execute", {})["execute_notebooks"] = "off"
# Local extensions' paths are relative to the configuration file: make them absolute.
root = os.path.dirname(os.path.abspath(sys.argv[1]))
local = config.get("sphinx", {}).get("local_extensions") or {}
for name, path in local.items():
    local[name] = os.path.join(root, path)
# Without execution there are no glued values: their references are checked by `make book`.
sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
sphinx_config["suppress_warnings"] = [*sphinx_config.get("suppress_warnings", []), "mystnb.glue"]
with open(sys.argv[2], "w", encoding="utf-8") as f:
    yaml.safe_dump(config, f, allow_unicode=True, sort_keys=False)
endef
export CHECK_CONFIG

check-workflows: $(STAMP)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

## Teaching ------------------------------------------------------------------------------------

# nbgrader's student versions of every part (nbgrader_config.py: each part is an assignment).
release: $(STAMP)
	$(BIN)/python -m companion.grading release

# Autograde a folder of submissions laid out as <student>/<part>/<chapter>.ipynb: feedback in
# feedback/, one row per student and exercise in grades.csv.
grade: $(STAMP) $(SEEDED_KERAS)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=<folder of <student>/<part>/<chapter>.ipynb>" >&2; exit 2; }
	$(BIN)/python -m companion.grading grade "$(SUBMISSIONS)"

# grades.csv again from the gradebook, after manual grading in the formgrader (nothing re-run).
grades: $(STAMP)
	$(BIN)/python -m companion.grading export

## Authoring -----------------------------------------------------------------------------------

# `jupytext --update` keeps the cell ids of the existing notebook (no spurious diffs) but also its
# outputs: strip those afterwards.
define STRIP_OUTPUTS
import sys, nbformat
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
dirty = False
for cell in nb.cells:
    if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
        cell.outputs, cell.execution_count, dirty = [], None, True
if dirty:
    nbformat.write(nb, path)
endef
export STRIP_OUTPUTS

notebooks: $(STAMP)
	@$(BIN)/python book/_ext/course_links.py
	@sources="$$($(FIND_SOURCES))"; \
	if [ -z "$$sources" ]; then echo "No chapter source (book/<part>/NN_name.py) yet."; exit 0; fi; \
	for src in $$sources; do \
		nb="$${src%.py}.ipynb"; \
		$(BIN)/jupytext --quiet --update --to notebook --output "$$nb" "$$src"; \
		$(BIN)/python -c "$$STRIP_OUTPUTS" "$$nb"; \
		echo "$$src -> $$nb"; \
	done

# Point the course at a fork: _config.yml's repository (and ref), every badge and setup cell.
fork: $(STAMP)
	@test -n "$(REPO)$(REF)" || { echo "usage: make fork REPO=<owner>/<name> [REF=<branch or tag>], or REF=... alone" >&2; exit 2; }
	$(BIN)/python book/_ext/course_links.py $(if $(REPO),--repo "$(REPO)") $(if $(REF),--ref "$(REF)")
	$(MAKE) notebooks

## Cleaning ------------------------------------------------------------------------------------

clean:
	rm -rf $(BUILD_DIR) .pytest_cache .jupyter_cache
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -print0 \
		| xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV) *.egg-info
