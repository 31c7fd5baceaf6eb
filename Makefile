# The two commands (README.md): `make dev` serves the API locally, `make test` runs every
# test. Both install what they need into the repo first (pinned), and stop every process
# they start.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
SOAK_PY := .venv-soak/bin/python
SOAK_MINUTES ?= 60
# cargo finds `cargo lambda` (the cargo-lambda binary from PyPI) and zig on this PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export CARGO_TERM_COLOR ?= never

.PHONY: help install dev test test-unit test-local-tools test-infra test-stack lint build bench token ops clean soak soak-rate idle-check fraud-eval

help:
	@echo "make dev    serve the API on http://127.0.0.1:3000 (Ctrl-C stops everything)"
	@echo "make test   run every test: lint, unit, integration, end-to-end, infra checks"
	@echo "make build  Lambda zips in target/lambda/<function>/bootstrap.zip"
	@echo "make bench [BENCH_QUICK=1]   build time, zip sizes, cold starts, peak memory -> docs/benchmarks/bench.md"
	@echo "make fraud-eval [FRAUD_EVAL_ARGS=--fit]   the fraud model on labelled traffic -> docs/benchmarks/fraud-eval.md"
	@echo "make token USER_ID=alice [ADMIN=1]   print a local bearer token"
	@echo "make ops ARGS=\"replay ...\"   commerce-ops against the local stack (README: Replay and redrive)"
	@echo "make soak [SOAK_MINUTES=60]   locust soak at 5 orders/s; results in docs/benchmarks/"
	@echo "make soak-rate RATE=10 [SOAK_MINUTES=10]   one sustained-rate run"
	@echo "make idle-check [IDLE_MINUTES=30]   latency before and after an idle stack"

install: $(VENV)/.installed local/node/node_modules/.installed .venv-soak/.installed

# locust and matplotlib for the load smoke and the soak, apart from moto's venv.
.venv-soak/.installed: local/requirements-soak.txt
	python3 -m venv .venv-soak
	.venv-soak/bin/pip install --quiet --disable-pip-version-check -r local/requirements-soak.txt
	touch $@

$(VENV)/.installed: local/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r local/requirements.txt
	touch $@

# Node tools for the checks (asl-validator), pinned by local/node/package-lock.json.
local/node/node_modules/.installed: local/node/package.json local/node/package-lock.json
	cd local/node && npm ci --no-audit --no-fund --silent
	touch $@

dev: install
	cargo build --workspace --bins
	$(PY) local/stack.py dev

test: install lint test-unit test-local-tools test-infra test-stack
	@echo "make test: all passed"

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	python3 local/check_features.py

test-unit:
	cargo test --workspace --lib --bins --locked
	cargo test --locked -p bootstrap --benches  # each criterion benchmark once, as a test

test-local-tools: install
	$(PY) local/test_emulator.py
	$(PY) local/test_gateway.py
	$(PY) local/test_pollers.py
	$(PY) local/test_lambda_gate.py
	$(PY) local/test_sdk_calls.py
	$(PY) local/test_round_trips.py
	$(PY) local/test_payment_provider.py
	$(PY) local/test_provider_books.py
	$(PY) local/bench/test_coldstart.py
	$(PY) local/bench/test_events.py

# Static checks of what deploys: the state machines as Terraform and the local stack
# render them (asl-validator); checkov over infra/ (its own venv, .venv-tools/) and
# terraform fmt -check where a terraform binary is installed; every generated role policy,
# evaluated from the Terraform by tests/infra.rs, linted by parliament (infra/lint_iam.py).
test-infra: install
	$(PY) local/validate_state_machines.py
	bash infra/check.sh
	.venv-tools/bin/python infra/test_lint_iam.py
	cargo test --workspace --locked --test infra -- --exact the_generated_role_policies_are_written_for_the_iam_linter
	.venv-tools/bin/python infra/lint_iam.py "$${CARGO_TARGET_DIR:-target}/iam-policies" --allowlist infra/iam-allowlist.json

# Integration and end-to-end tests need the emulator, cargo lambda watch and the gateway.
# Build first, so cargo lambda watch only starts binaries that are already linked; each built
# function must start with only the variables Terraform gives it. After the tests, every AWS
# call the functions made is held against what their IAM policies grant, and every
# operation's DynamoDB round trips (from the functions' metrics lines) against its budget.
test-stack: install
	cargo build --workspace --all-targets --locked
	$(PY) local/test_function_env.py
	rm -f "$${CARGO_TARGET_DIR:-target}/saga-matrix.md" "$${CARGO_TARGET_DIR:-target}/provider-matrix.md"
	$(PY) local/stack.py exec -- bash -c 'cargo test --workspace --tests --locked --no-fail-fast -- --test-threads 4 \
	  && cat "$${CARGO_TARGET_DIR:-target}/saga-matrix.md" "$${CARGO_TARGET_DIR:-target}/provider-matrix.md" \
	  && echo "load smoke: 64 shoppers for 2 minutes" && $(SOAK_PY) local/soak/run.py smoke'
	$(PY) local/sdk_calls.py check
	$(PY) local/round_trips.py check

# Long-running checks of the local stack (README: Operating the local stack). Each starts its
# own stack, drives it through the gateway on 127.0.0.1 only, and stops by itself.
soak: install
	cargo build --workspace --bins --locked
	$(PY) local/stack.py exec -- $(SOAK_PY) local/soak/run.py soak --minutes $(SOAK_MINUTES)

soak-rate: install
	cargo build --workspace --bins --locked
	$(PY) local/stack.py exec -- $(SOAK_PY) local/soak/run.py rate --rate $(RATE) --minutes $(or $(filter-out 60,$(SOAK_MINUTES)),10)

idle-check: install
	cargo build --workspace --bins --locked
	$(PY) local/stack.py exec -- $(SOAK_PY) local/soak/run.py idle --minutes $${IDLE_MINUTES:-30}

# Every Lambda's zip, for infra/declaration.json's lambda.architecture (the one Terraform deploys).
build: install
	bash infra/build.sh

# What the functions cost where Lambda bills them (README: Benchmarks): builds the zips for
# this machine's architecture and hello world, then cold starts against hello world and peak
# memory, on loopback only. BENCH_QUICK=1 for a smoke run.
bench: install
	$(PY) local/bench/run.py

# The fraud model measured on labelled traffic (functions/fraud/src/eval.rs): recall per
# injected pattern and the false-positive rate; FRAUD_EVAL_ARGS=--fit fits the weights first.
# Pure computation, no stack; exits non-zero when a target is missed.
fraud-eval:
	cargo run --locked -q -p fraud --example fraud-eval -- $(FRAUD_EVAL_ARGS)

# The operator's command line against the local stack of `make dev`, e.g.
# make ops ARGS="redrive --queue notifications"
ops:
	AWS_ENDPOINT_URL=http://127.0.0.1:$${MOTO_PORT:-5000} AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$${LOCAL_DYNAMODB_PORT:-5001} AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
	AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test cargo run -q -p ops --bin commerce-ops -- $(ARGS)

token: install
	@$(PY) local/mint_token.py $(USER_ID) $(if $(ADMIN),--admin,)

clean:
	rm -rf .local target/lambda
