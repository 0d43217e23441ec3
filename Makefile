# Two commands set up everything on a fresh machine:
#   make run    create/refresh .venv, generate + sync the sample documents, serve the chat UI
#   make test   create/refresh .venv and run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.enclave-installed

.PHONY: venv run test lint bench-ingest bench-retrieval bench-latency bench-audit bench-smb

$(STAMP): pyproject.toml Makefile deploy/install.sh
	# The one install recipe, also used by the image and the systemd install (its header
	# says what it does and why; docs/parsing.md, "Install recipe for PDFs").
	bash deploy/install.sh --venv $(VENV) --python $(PYTHON) --editable --extras dev
	touch $(STAMP)

venv: $(STAMP)

run: venv
	$(VENV)/bin/enclave run --sync-samples $(if $(PORT),--port $(PORT),)

test: venv
	$(PY) -m pytest

CORPUS ?= ../shared/corpus/handbook-18f

bench-ingest: venv
	$(PY) -m bench.ingest --corpus $(CORPUS)

bench-retrieval: venv
	$(PY) -m bench.retrieval

bench-latency: venv
	$(PY) -m bench.latency

bench-audit: venv
	$(PY) -m bench.audit

# needs root and the Samba packages (.ci/run installs them); starts its own test DC
bench-smb: venv
	$(PY) -m bench.smb

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy
