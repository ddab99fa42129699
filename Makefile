# minigpt-book: `make book` to build the book, `make test` to test everything.
# Both create .venv and install what they need on first use; after that they
# work offline. `make help` lists every target.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JB     := $(BIN)/jupyter-book
# The first cell that asks minigpt.zoo for a model trains it (about 2 minutes on
# 2 idle cores, several times that on a busy machine); the limit only guards against hangs.
CELL_TIMEOUT := 900

.DEFAULT_GOAL := help
.PHONY: help install book test lint format test-unit test-notebooks test-book bench sweep-nanogpt sweep-modern sweep-incontext sweep-bert sweep-align lab clean check-python

help:  ## list the targets
	@echo "make install         create .venv and install requirements.txt + minigpt (editable)"
	@echo "make book            execute every notebook and build the HTML book into _build/html"
	@echo "make test            lint, unit tests, every notebook as a test (nbval), the book with warnings as errors"
	@echo "make lint            ruff: the format and lint check of the package, tests, benchmarks and notebooks"
	@echo "make format          ruff: rewrite them in the one format (78 columns)"
	@echo "make test-unit       only the unit tests in tests/ and the doctests in minigpt/"
	@echo "make test-notebooks  only the notebooks, executed by pytest --nbval-lax"
	@echo "make test-book       only the book build from a clean cache with warnings as errors, then its HTML checks"
	@echo "make bench           run the side-by-side benchmarks in benchmarks/ and write benchmarks/results/"
	@echo "make sweep-nanogpt   re-run the 3-seed nanoGPT comparison (about 10 minutes)"
	@echo "make sweep-modern    re-run GPT-2 vs Llama layout, one change at a time, 3 seeds (about 40 minutes)"
	@echo "make sweep-incontext re-run the in-context-learning model over 8 seeds, with ablations (about 4 minutes)"
	@echo "make sweep-bert      train the char GPT and BERT 4x longer, filling in characters along the way (about 20 minutes)"
	@echo "make sweep-align     the alignment chapter's stages over 3 seeds, GRPO for 300 steps (about 20 minutes)"
	@echo "make lab             open the notebooks in JupyterLab"
	@echo "make clean           remove the built book and its execution cache (keeps .venv)"

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null || { \
	  echo "error: minigpt-book needs Python >= 3.10, but '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo 'missing')."; \
	  echo "       Install a newer Python and run e.g. 'make $(MAKECMDGOALS) PYTHON=python3.11'."; exit 1; }

install: $(STAMP)  ## create .venv with the pinned requirements and minigpt

$(STAMP): requirements.txt constraints.txt pyproject.toml | check-python
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --no-deps --no-build-isolation -e .
	@touch $(STAMP)

book: install  ## build the book (notebooks run once, then come from the cache)
	$(JB) build --keep-going .
	@echo
	@echo "The book is built. Open: file://$(CURDIR)/_build/html/index.html"

test: install lint test-unit test-notebooks test-book  ## everything CI runs
	@echo "make test: all passed"

# One formatter and linter, configured in pyproject.toml ([tool.ruff]).
LINTED := minigpt tests benchmarks book

lint: install  ## fails on any file that `make format` would change or ruff flags
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/ruff check $(LINTED)

format: install
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

test-unit: install  ## the tests in tests/ and the examples in minigpt's docstrings (doctests)
	$(BIN)/pytest -m "not built_book" tests minigpt

test-notebooks: install
	$(BIN)/pytest --nbval-lax --nbval-cell-timeout $(CELL_TIMEOUT) -p no:cacheprovider book

test-book: install  ## build from a clean cache with warnings as errors, then check the HTML
	$(JB) clean --all .
	$(JB) build -W -n --keep-going .
	$(BIN)/pytest -m built_book -p no:cacheprovider tests/test_built_book.py

bench: install  ## run every benchmarks/bench_*.py (each prints ratios and writes results/*.json)
	@set -e; for script in benchmarks/bench_*.py; do \
	  echo "== $$script"; $(BIN)/python $$script; done
	$(BIN)/python benchmarks/report.py

sweep-nanogpt: install  ## the recipe that beats nanoGPT, 3 seeds (long: kept out of make bench)
	$(BIN)/python benchmarks/sweep_nanogpt.py --lr 4e-3 --seeds 0 1 2
	$(BIN)/python benchmarks/sweep_nanogpt.py --summary

# 24 runs of about 2-3 minutes, two at a time (one thread each): the results
# the chapter "From GPT-2 to today's models" reads
sweep-modern: install  ## GPT-2 vs the Llama layout, one change at a time, 3 seeds (long: kept out of make bench)
	rm -f benchmarks/results/sweep_modern.json
	$(BIN)/python benchmarks/sweep_modern.py --variants gpt2 llama rotary rmsnorm & \
	  $(BIN)/python benchmarks/sweep_modern.py --variants swiglu no-bias gqa mqa; wait
	$(BIN)/python benchmarks/sweep_modern.py --summary

# 8 runs of about 50 s, two at a time: the results the chapter "In-context
# learning" reads
sweep-incontext: install  ## in-context learning over 8 seeds: when it appears, which heads do it
	rm -f benchmarks/results/sweep_incontext.json
	$(BIN)/python benchmarks/sweep_incontext.py --seeds 0 2 4 6 & \
	  $(BIN)/python benchmarks/sweep_incontext.py --seeds 1 3 5 7; wait
	$(BIN)/python benchmarks/sweep_incontext.py --summary

# 2 runs of about 20 minutes, side by side: the results the chapter
# "Encoders: BERT and masked language modelling" reads
sweep-bert: install  ## the char GPT and BERT trained 4x longer: fill-in accuracy along the way
	rm -f benchmarks/results/sweep_bert.json
	$(BIN)/python benchmarks/sweep_bert.py --arch gpt & \
	  $(BIN)/python benchmarks/sweep_bert.py --arch encoder; wait
	$(BIN)/python benchmarks/sweep_bert.py --summary

# 3 seeds of about 10 minutes each, two side by side: the results the chapter
# "From language model to assistant" reads
sweep-align: install  ## the alignment chapter's stages over 3 seeds, GRPO for 300 steps
	rm -f benchmarks/results/sweep_align.json
	$(BIN)/python benchmarks/sweep_align.py --seeds 0 2 & \
	  $(BIN)/python benchmarks/sweep_align.py --seeds 1; wait
	$(BIN)/python benchmarks/sweep_align.py --summary

lab: install
	$(BIN)/jupyter lab book

clean:
	rm -rf _build
