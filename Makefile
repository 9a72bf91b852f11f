# The verbs of the booking service. `make test` and `make run` set up everything on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# One stack per git branch: booking-<branch>, with the branch made safe for a stack name.
BRANCH := $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo dev)
STAGE := $(shell echo '$(BRANCH)' | tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9-]+/-/g; s/^-+//; s/-+$$//' | cut -c1-40)
STACK := booking-$(STAGE)
PAYMENT_API_URL ?= https://payment.example.com
HOST ?= 127.0.0.1
PORT ?= 4000

.PHONY: venv test lint typecheck unit run bench deploy clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

test: lint
	$(BIN)/pytest

run: venv
	$(BIN)/python -m offline serve --host $(HOST) --port $(PORT)

bench: venv
	$(BIN)/python bench/transitions.py
	$(BIN)/python bench/deploy.py
	$(BIN)/python bench/cold_imports.py
	$(BIN)/python bench/cold_starts.py
	$(if $(BENCH_PYTHON),$(BENCH_PYTHON) bench/cold_starts.py)
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/latency.py

deploy:
	sam build --template-file template.yaml
	sam deploy --config-env default --stack-name $(STACK) \
		--parameter-overrides Stage=$(STAGE) PaymentApiUrl=$(PAYMENT_API_URL) \
		--tags service=booking stage=$(STAGE)

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
