# Serverless Boundary Lab. `make help` lists the targets.
SHELL := /bin/bash
PY := .venv/bin/python
PROFILE ?= seed
# which topologies up, load, experiment and report work on: a,b | all (default: the comparison pair)
TOPOLOGIES ?=
export TOPOLOGIES
# make load's own choice, kept: both | <name> (default: TOPOLOGIES)
TOPOLOGY ?=
EXPERIMENT_PROFILE ?= smoke
EXPERIMENT_ORDER ?= auto

.DEFAULT_GOAL := help
.PHONY: help venv sam-cli seed-app up images down status test test-unit bench load load-ui report preview story experiment \
	chaos kill-switch verify verify-load bootstrap teardown dashboards

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: ## build the lab's pinned virtual environment (.venv)
	@bash scripts/ensure-venv.sh

sam-cli: ## build the SAM CLI's own pinned environment (.venv-sam; its pins conflict with LocalStack's)
	@bash scripts/ensure-venv.sh sam-cli

seed-app: venv sam-cli ## deploy the seed repository's two branches unchanged into accounts of their own: SEED_DIR=<clone> (docs/SEED_APP.md)
	@$(PY) -m bootstrap.seed_app deploy "$(SEED_DIR)"

up: venv ## bring the lab up (Docker Compose if a Docker engine answers, else host mode; LAB_MODE=docker|host; TOPOLOGIES=a,b|all)
	@$(PY) -m labctl up

images: venv ## build compose mode's images (LocalStack + the lab's plugins, Prometheus) from Debian and PyPI packages
	@$(PY) -m labctl.images

down: ## stop everything the lab started; no process or port is left behind
	@if [ -x $(PY) ]; then $(PY) -m labctl down; else echo "nothing to stop (no .venv)"; fi

status: ## show what is running and where
	@$(PY) -m labctl status

test: venv ## run the whole test suite against real LocalStack, Prometheus and Locust
	@bash scripts/install-system-deps.sh
	@bash scripts/run-tests.sh

test-unit: venv ## run the fast unit tests only
	@$(PY) -m pytest tests/unit -q

bench: venv ## run the benchmarks and print their figures
	@$(PY) -m benchmarks

bootstrap: venv ## (re)provision the chosen topologies (TOPOLOGIES; default both) on the running LocalStack
	@$(PY) -m bootstrap provision

teardown: venv ## remove what bootstrap provisioned
	@$(PY) -m bootstrap teardown

load: venv ## run Locust headless: PROFILE=seed|seed-code|smoke TOPOLOGY=both|<a topology of lab_kernel/topologies.toml> (default: TOPOLOGIES)
	@$(PY) -m load run --profile $(PROFILE) $(if $(TOPOLOGY),--topology $(TOPOLOGY))

load-ui: venv ## open Locust's web UI instead
	@$(PY) -m load ui --profile $(PROFILE) $(if $(TOPOLOGY),--topology $(TOPOLOGY))

dashboards: venv ## regenerate Grafana dashboards from code and lint them
	@$(PY) -m grafana.build

report: venv ## write reports/<run>/report.md with plots and the order ledger (any app: ACCOUNT=<id> [START=-20m])
	@$(PY) -m report $(if $(ACCOUNT),account --account "$(ACCOUNT)" $(if $(START),--start="$(START)"),build)

preview: venv ## predict a run before it: arithmetic and a simulated run of PROFILE on the deployed configuration
	@$(PY) -m report preview --profile $(PROFILE)

story: venv ## print one order's story: make story ID=<correlation_id> (any app: ACCOUNT=<id> REGION=<region>)
	@$(PY) -m report story "$(ID)" $(if $(ACCOUNT),--account "$(ACCOUNT)") $(if $(REGION),--region "$(REGION)")

experiment: venv ## smoke load on the chosen topologies (TOPOLOGIES, with the pair), drain, report; fails if not reproduced (EXPERIMENT_PROFILE=seed: 18 min; EXPERIMENT_ORDER=auto|side-by-side|in-turns)
	@$(PY) -m report experiment --profile $(EXPERIMENT_PROFILE) --order $(EXPERIMENT_ORDER)

chaos: venv ## failure injection: make chaos ARGS="on --function delivery --mode latency ..." | ARGS=status
	@$(PY) -m resilience.chaos $(ARGS)

kill-switch: venv ## make kill-switch STATE=on|off [FUNCTION=...]
	@$(PY) -m resilience.kill_switch $(STATE) $(FUNCTION)

verify: venv ## run the continuous-verification experiments against the running lab
	@$(PY) -m resilience.verify

FAULTS ?= crash,sigkill,courier-down,kill-switch
verify-load: venv ## faults during a smoke load on both topologies, each with its ledger; fails if an order is lost (FAULTS=...; 75 min)
	@$(PY) -m resilience.under_load --faults $(FAULTS) --profile $(EXPERIMENT_PROFILE)
