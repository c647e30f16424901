# Quick start (see README.md):
#   make demo   set up .venv (pinned CPU stack) and run the demo on an embedded default
#   make test   set up .venv and run the test suite
VENV ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: setup demo test

setup:
	bash tools/setup_env.sh $(VENV)

demo: setup
	$(PYTHON) tools/demo.py

test: setup
	$(PYTHON) -m pytest tests
