# The verbs of the booking service. `make test` and `make run` set up everything on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins many packages of its own (boto3, pydantic…): it lives in a virtual environment apart.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

# One stack per git branch: booking-<branch>, with the branch made safe for a stack name.
BRANCH := $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo dev)
STAGE := $(shell echo '$(BRANCH)' | tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9-]+/-/g; s/^-+//; s/-+$$//' | cut -c1-40)
STACK := booking-$(STAGE)
PAYMENT_API_URL ?= https://payment.example.com
# Every tag of the stack, in this one place: `sam deploy --tags` replaces samconfig.toml's tags.
TAGS := service=booking project=serverless-airline stage=$(STAGE)
# `sam build` installs src/requirements.txt with the template's runtime: that Python on PATH builds on
# this machine, else Docker builds in the runtime's image (--use-container). BUILD_IN=host|container
# chooses; found out only when deploy runs, so other targets never pay for it.
RUNTIME := $(shell sed -nE 's/^ +Runtime: (python3\.[0-9]+).*/\1/p' template.yaml | head -n1)
BUILD_IN = $(if $(shell $(RUNTIME) -c '' >/dev/null 2>&1 && echo y),host,$(if $(shell docker info >/dev/null 2>&1 && echo y),container))
HOST ?= 127.0.0.1
PORT ?= 4000
# e.g. SERVE_FLAGS=--fast-retries; a non-loopback HOST needs --allow-anyone-on-the-network
SERVE_FLAGS ?=
# TLS=1: https and wss with a certificate made for the run (Amplify's real time opens wss only).
TLS ?=

.PHONY: venv test lint checkov typecheck unit run bench deploy smoke clean

venv: $(STAMP)

# uv (from PyPI, pinned) installs into the venv what pip would, with the same pins: on 2 cores a fresh
# .venv took 32 s with pip and a warm cache, 8.7 s with uv and an empty one (checkov's: 7 s).
# setuptools notes on every editable install of two package roots (src/booking, offline) that a
# same-named folder in the working directory would win over the installed one: here it is that folder.
UV_VERSION := 0.9.5
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

$(CHECKOV_STAMP):
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(CHECKOV_VENV)/bin/uv pip install --quiet --python $(CHECKOV_VENV)/bin/python checkov==$(CHECKOV_VERSION)
	touch $@

# template.yaml against checkov's policies; .checkov.yaml lists each skipped check with its reason.
checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml

# Two workers, one test file each at a time (module-scoped servers stay in one process): most tests
# wait on sagas and sandboxes, so two cores run the suite in little more than half the time.
TEST_WORKERS ?= 2

# The two virtual environments are made side by side (-j2); lint and checkov run beside the tests (the
# tests leave a core idle for a third of their time), their output kept and printed after the tests'.
# The wall time (from the start, the virtual environments included) and the 10 slowest tests are
# printed at the end, pass or fail; any of the three failing fails make test.
test:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory -j2 $(STAMP) $(CHECKOV_STAMP) || exit $$?; \
	checks=$$(mktemp); \
	$(MAKE) --no-print-directory -j2 lint checkov >$$checks 2>&1 & checker=$$!; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=10; tests=$$?; \
	wait $$checker; checked=$$?; \
	echo "== make lint checkov (run beside the tests): exit status $$checked"; cat $$checks; rm -f $$checks; \
	status=$$(( tests != 0 ? tests : checked )); \
	echo "make test: $$(( $$(date +%s) - start )) s wall time, exit status $$status (tests $$tests, lint and checkov $$checked)"; \
	exit $$status

run: venv
	$(BIN)/python -m offline serve --host $(HOST) --port $(PORT)$(if $(TLS), --tls) $(SERVE_FLAGS)

# Every script runs whatever an earlier one did (a missed goal, an error); then make names the failed
# ones and fails. QUICK=1: each on the smallest counts that exercise it, no goal judged (README).
BENCH_SCRIPTS := transitions deploy cold_imports cold_starts startup latency memory iam_checks notify_load
BENCH_FLAGS := $(if $(QUICK),--quick)

bench: venv
	@failed=; \
	for script in $(BENCH_SCRIPTS); do \
		echo "== bench/$$script.py $(BENCH_FLAGS)"; SECONDS=0; \
		$(BIN)/python bench/$$script.py $(BENCH_FLAGS) || failed="$$failed $$script"; \
		echo "== bench/$$script.py: $$SECONDS s"; echo; \
	done; \
	$(if $(BENCH_PYTHON),$(BENCH_PYTHON) bench/cold_starts.py $(BENCH_FLAGS) || failed="$$failed cold_starts($(BENCH_PYTHON))";) \
	if [ -n "$$failed" ]; then echo "make bench: failed:$$failed" >&2; exit 1; fi

deploy:
	$(if $(BUILD_IN),,$(error sam build needs $(RUNTIME) (the template's runtime) on PATH: install it, e.g. \
		uv python install $(RUNTIME:python%=%), or pyenv install $(RUNTIME:python%=%) then pyenv shell $(RUNTIME:python%=%); \
		or start Docker, and make deploy builds in the runtime's image (sam build --use-container)))
	sam build --template-file template.yaml$(if $(filter container,$(BUILD_IN)), --use-container)
	sam deploy --config-env default --stack-name $(STACK) \
		--parameter-overrides Stage=$(STAGE) PaymentApiUrl=$(PAYMENT_API_URL) \
		--tags $(TAGS)

# tests/e2e against this branch's stack in AWS (booking-$(STAGE)), with real Cognito users it creates and
# deletes; URL=http://127.0.0.1:4000 runs them against `make run` instead (what make test does).
smoke: venv
	$(BIN)/python -m tests.e2e.smoke $(if $(URL),--stack booking-offline --endpoint-url $(URL),--stack $(STACK))

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
