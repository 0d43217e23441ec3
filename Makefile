# Two commands set up everything on a fresh machine:
#   make run    create/refresh .venv, generate + sync the sample documents, serve the chat UI
#   make test   create/refresh .venv and run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.enclave-installed

.PHONY: venv run test lint bench-ingest bench-retrieval bench-latency bench-audit

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: the CPU wheel on these machines' disk (a bare or open range pulls CUDA).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,onnx]'
	# PDF parsing: unstructured imports unstructured_inference even for strategy=fast, but its
	# declared deps (timm -> torchvision) break transformers next to torch 2.13.0 CPU. Install it
	# without deps; pyproject lists what its import needs (docs/parsing.md, "Install recipe").
	$(PY) -m pip install -q --no-deps unstructured-inference==1.6.14
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

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy
