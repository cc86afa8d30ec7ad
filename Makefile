# llmstage developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := .tools/bin
KUBECONFIG_LOCAL := .cluster/kubeconfig
KUBECTL := $(BIN)/kubectl --kubeconfig $(KUBECONFIG_LOCAL)
PYTEST_ARGS ?=
N ?= 1000
RUNS ?= 3

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# ------------------------------------------------------------------ set-up

# Exactly the hashed pins of requirements/dev.txt, never what the registry serves today; and
# requirements/gcs.txt (google-auth) into $(VENV)/fetch-gcs, outside site-packages (hack/venv.sh).
$(VENV)/.installed: requirements/dev.txt requirements/gcs.txt pyproject.toml hack/venv.sh
	@PYTHON=$(PYTHON) hack/venv.sh $(VENV)
	@touch $@

.PHONY: venv
venv: $(VENV)/.installed ## create .venv from the locks (requirements/dev.txt: the package and dev tools; gcs.txt into .venv/fetch-gcs)

.PHONY: lock
lock: ## re-lock requirements/ after a change to pyproject.toml's dependencies (keeps the other pins)
	$(PYTHON) hack/lock.py

.PHONY: lock-upgrade
lock-upgrade: ## move every lock to the newest releases pyproject.toml's ranges allow (review the diff)
	$(PYTHON) hack/lock.py --upgrade

.PHONY: tools
tools: ## build kube-apiserver, kcm, scheduler, kubectl, etcd, kwok, helm, kube-score, the LWS controller from Go modules (cached per machine)
	@hack/tools/build.sh

# ------------------------------------------------------------------ the operator image

IMAGE_SBOM := dist/llmstage-image.cdx.json

.PHONY: image
image: ## the operator image (hack/images.py: buildah, cached) and its SBOM, CycloneDX JSON in dist/
	$(PYTHON) hack/images.py build llmstage
	$(PYTHON) hack/sbom.py --out $(IMAGE_SBOM)

# ------------------------------------------------------------------ local cluster

.PHONY: cluster-up
cluster-up: tools ## start the local control plane with kwok nodes (idempotent)
	@$(PYTHON) hack/cluster.py up

.PHONY: cluster-down
cluster-down: ## stop the local cluster; nothing keeps running or listening
	@$(PYTHON) hack/cluster.py down

.PHONY: cluster-status
cluster-status: ## show which cluster components are running
	@$(PYTHON) hack/cluster.py status

# ------------------------------------------------------------------ generated files

CRD_FILE := crds/llmservices.llmstage.io.yaml

.PHONY: generate
generate: venv ## regenerate crds/, the chart's CRD and files, manifests/ and docs/api.md (tests fail on drift)
	$(VENV)/bin/llmstage crd > $(CRD_FILE).tmp && mv $(CRD_FILE).tmp $(CRD_FILE)
	$(PY) hack/generate_delivery.py

# ------------------------------------------------------------------ checks

# What ruff reads; .pre-commit-config.yaml runs the same checks on the files of a commit.
PY_PATHS := operator testkit tests e2e hack bench images conftest.py

# The shell scripts the serving pods run under the Ollama image's /bin/sh: POSIX sh.
SH_PATHS := operator/llmstage/podside/*.sh

.PHONY: lint
lint: venv ## ruff, mypy and shellcheck
	$(VENV)/bin/ruff check $(PY_PATHS)
	$(VENV)/bin/ruff format --check $(PY_PATHS)
	$(VENV)/bin/mypy
	$(VENV)/bin/shellcheck -s sh $(SH_PATHS)

.PHONY: fmt
fmt: venv ## format in place and apply ruff's safe fixes (import order, ...); `make lint` then says what is left
	$(VENV)/bin/ruff check --fix-only --quiet $(PY_PATHS)
	$(VENV)/bin/ruff format $(PY_PATHS)

.PHONY: chart-lint
chart-lint: ## helm lint --strict of charts/llmstage (cluster and namespaced RBAC)
	$(BIN)/helm lint --strict charts/llmstage
	$(BIN)/helm lint --strict charts/llmstage --set rbac.scope=namespaced --set 'watchNamespaces={team-a}'

.PHONY: test-unit
test-unit: venv tools ## unit tests only: no cluster (the tools: kube-score, helm, versitygw run in it), fast
	$(PY) -m pytest -m 'not cluster' $(PYTEST_ARGS)

# The unit tier first (no cluster: a failure there shows in a minute), then the cluster tiers.
# Brings the cluster up when it is not running and takes it down again afterwards,
# whatever the outcome, and then frees the real node's image store and registry (about 20 GB: the
# kind tier needs the room); a cluster that was already running is left running. Last, the e2e suite
# on a new kind cluster (make e2e-kind), where the machine can run one (it says why not, else);
# LLMSTAGE_E2E_KIND=0 leaves it out.
.PHONY: test
test: venv tools lint ## everything: lint, unit tests, integration, real-node and e2e tests on the local cluster, then e2e on kind
	$(PY) -m pytest -m 'not cluster' $(PYTEST_ARGS)
	@was_running=0; $(PYTHON) hack/cluster.py status >/dev/null 2>&1 && was_running=1; \
	$(PYTHON) hack/cluster.py up || exit 1; \
	$(PYTHON) hack/cluster.py images; rc=$$?; \
	if [ $$rc = 0 ]; then $(PY) -m pytest -m 'cluster and not teardown_last' $(PYTEST_ARGS); rc=$$?; fi; \
	if [ $$rc = 0 ]; then $(PY) -m pytest -m teardown_last $(PYTEST_ARGS); rc=$$?; fi; \
	if [ $$was_running = 0 ]; then $(PYTHON) hack/cluster.py down && $(PYTHON) hack/cluster.py free-disk; fi; \
	if [ $$rc = 0 ]; then $(PYTHON) hack/e2e_kind.py tier; rc=$$?; fi; \
	exit $$rc

# The check that the suite waits for conditions, not for time: both cores busy.
.PHONY: test-under-load
test-under-load: ## `make test` RUNS times in a row (default 3) while a CPU hog keeps every core busy
	$(PYTHON) hack/under_load.py --runs $(RUNS) -- $(MAKE) test

.PHONY: e2e
e2e: venv tools ## e2e suite: chart installed, operator under its ServiceAccount (local cluster or LLMSTAGE_TEST_KUBECONFIG)
	$(PY) -m pytest e2e $(PYTEST_ARGS)

# hack/e2e_kind.py: the machine's Docker engine and kind's stock node image where they are (a CI
# runner), else a private dockerd and a node image built here (docs/e2e-kind.md). Always deletes
# the cluster and checks that nothing is left, whatever the outcome.
.PHONY: e2e-kind
e2e-kind: venv ## e2e suite on a new kind cluster: chart-installed operator image, real Ollama (docs/e2e-kind.md)
	$(PYTHON) hack/e2e_kind.py run

.PHONY: e2e-kind-down
e2e-kind-down: ## delete the kind cluster of e2e-kind (after `hack/e2e_kind.py up` or a crash) and check nothing is left
	$(PYTHON) hack/e2e_kind.py down

# ------------------------------------------------------------------ the main job

.PHONY: demo
demo: venv cluster-up ## local cluster + operator + examples, then an in-place promotion
	@$(KUBECTL) get nodes -L nvidia.com/gpu.product
	@$(PY) hack/demo.py up

.PHONY: demo-down
demo-down: ## stop the demo's operator and the local cluster
	@$(PY) hack/demo.py down
	@$(PYTHON) hack/cluster.py down

# ------------------------------------------------------------------ benchmarks and soak (not in make test)

.PHONY: bench
bench: venv cluster-up ## P1-P5 on the local cluster, N=100 and N=$(N) (`make bench N=200`); bench/results/DATE.json
	$(PY) -m bench.run --n $(N)

.PHONY: soak
soak: venv cluster-up ## long reliability runs: 20 operator kills at 200 services, apiserver restart, 500-spec fuzz
	LLMSTAGE_SOAK=1 $(PY) -m pytest tests/soak $(PYTEST_ARGS)

.PHONY: clean
clean: cluster-down ## remove the venv, .tools links and cluster state (the tool cache stays)
	rm -rf $(VENV) .tools .cluster
