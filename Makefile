# Quick start (see README.md):
#   make demo        set up .venv (pinned CPU stack) and run the demo on an embedded default
#   make test        set up .venv, check the code style, run the whole test suite (what CI runs)
#   make test-quick  the same without the tests marked slow
#   make lint        the code style check alone (ruff, ruff.toml)
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PYTEST := $(PYTHON) -m pytest tests --durations=15

.PHONY: setup demo lint test test-quick

setup:
	bash tools/setup_env.sh $(VENV)

demo: setup
	$(PYTHON) tools/demo.py

lint: setup
	$(VENV)/bin/ruff check .

test: lint
	$(PYTEST)

test-quick: lint
	$(PYTEST) -m "not slow"
