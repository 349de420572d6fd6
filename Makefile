# hpc.vcluster: every target sets up what it needs on a fresh Debian 12 machine.
#   make test    everything that proves the project works (what CI runs)
#   make demo    bring up the lab and deploy examples/vclusters/demo.yml on it
# Parts: make lint | sanity | unit | build-check | fresh-root | contract | integration | molecule
#        make ee-context (the AWX execution environment's build context)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT        := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
PYTHON      ?= python3
VENV        := $(ROOT)/.venv
BIN         := $(VENV)/bin
COLLECTIONS := $(ROOT)/.collections
CACHE       := $(ROOT)/.cache
STAMP       := $(VENV)/.stamp
ANSIBLE_WHEEL := ansible==12.3.0

# Debian packages: podman and friends for the lab nodes (netavark needs iptables, which
# Debian only suggests), debootstrap for the base image, ssh client for Ansible, git for
# the sanity copy, python3-venv for .venv, shellcheck for sanity's test of the roles' shell
# scripts (without it ansible-test skips that test with a warning). bindep.txt lists the same
# set (a test keeps them in step) and lab/vcluster_lab/host_deps.py says which executable each
# one provides.
APT_PACKAGES := podman conmon runc netavark aardvark-dns iptables debootstrap tar openssh-client git \
                iproute2 util-linux mount coreutils ca-certificates python3-venv shellcheck

export ANSIBLE_CONFIG       := $(ROOT)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export CONTAINERS_CONF      := $(ROOT)/lab/containers.conf
export PATH                 := $(BIN):$(PATH)

.PHONY: help
help:
	@sed -n '2,4p' $(ROOT)/Makefile

# ---------------------------------------------------------------------------- setup
.PHONY: deps venv
deps: $(CACHE)/.apt-stamp
$(CACHE)/.apt-stamp:
	@mkdir -p $(CACHE)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@touch $@

venv: $(STAMP)
$(STAMP): $(CACHE)/.apt-stamp requirements/dev.in requirements/constraints.txt requirements/collections.yml lab/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.in -c requirements/constraints.txt 2> >(grep -v '^WARNING: Location' >&2)
	@$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e lab 2> >(grep -v '^WARNING: Location' >&2)
	@$(BIN)/python tools/install-collections.py --requirements requirements/collections.yml \
	    --wheel-spec $(ANSIBLE_WHEEL) --dest $(COLLECTIONS) 2> >(grep -v '^WARNING: Location' >&2)
	@mkdir -p $(COLLECTIONS)/ansible_collections/hpc
	@ln -sfn ../../.. $(COLLECTIONS)/ansible_collections/hpc/vcluster
	@touch $@

.PHONY: constraints
constraints: ## refresh the pinned set after editing requirements/dev.in
	@rm -rf $(CACHE)/venv-freeze && $(PYTHON) -m venv $(CACHE)/venv-freeze
	@$(CACHE)/venv-freeze/bin/pip install --quiet -r requirements/dev.in
	@$(CACHE)/venv-freeze/bin/pip freeze --exclude-editable > requirements/constraints.txt
	@rm -rf $(CACHE)/venv-freeze

# ---------------------------------------------------------------------------- checks
.PHONY: test lint sanity unit contract lab-cli integration molecule molecule-images build-check changelog-lint fresh-root
test: venv
	@$(BIN)/python -m vcluster_lab.nmn_claim
	@$(BIN)/python tools/run-suite.py "molecule-images=$(MAKE) molecule-images" \
	    "lint=$(MAKE) lint" ">unit=$(MAKE) unit" ">build-check=$(MAKE) build-check" ">fresh-root=$(MAKE) fresh-root" \
	    ">sanity=$(MAKE) sanity" ">contract=$(MAKE) contract" "+lab-cli=$(MAKE) lab-cli" ">integration=$(MAKE) integration" \
	    "+molecule=$(MAKE) molecule MOLECULE_JOBS=2"

lint: venv
	@echo "== ansible-lint (production profile)"
	@$(BIN)/ansible-lint --profile production --offline -q
	@echo "== antsibull-changelog lint"
	@$(BIN)/antsibull-changelog lint

# ansible-test only runs inside .../ansible_collections/<ns>/<name> and refuses symlinked
# trees, so the tracked (and new, not ignored) files are copied to a scratch tree. The tree
# must be outside this git work tree: inside it, ansible-test lists files through git,
# which ignores the scratch directory, and silently tests nothing. lab/ (the lab's own
# Python package and its reference specs) and .ci/ are not collection content.
# HOME points at a project cache holding an offline stand-in for ansible-test's get-pip.
SANITY_ROOT := $(or $(TMPDIR),/tmp)/hpc-vcluster-sanity-$(shell id -u)-$(shell printf %s '$(ROOT)' | md5sum | cut -c1-8)
SANITY_TREE := $(SANITY_ROOT)/ansible_collections/hpc/vcluster
sanity: venv
	@echo "== ansible-test sanity"
	@rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_TREE)
	@git ls-files -z --cached --others --exclude-standard | grep -z -v -E '^(lab|\.ci)/' \
	    | xargs -0 -I{} sh -c 'test -e "{}" && echo "{}"' | tar -C $(ROOT) -cf - -T - | tar -C $(SANITY_TREE) -xf -
	@mkdir -p $(CACHE)/ansible-test-home/.ansible/test/cache
	@cp tools/get-pip-offline.py $(CACHE)/ansible-test-home/.ansible/test/cache/get_pip_24_2.py
	@cd $(SANITY_TREE) && HOME=$(CACHE)/ansible-test-home $(BIN)/ansible-test sanity --venv --python 3.11 \
	    --color no 2>&1 | tee $(SANITY_ROOT)/log | grep -v -E '^(Collecting|  Downloading|  Using cached|Installing collected|Successfully installed|  Attempting uninstall|    Found existing|    Uninstalling|      Successfully uninstalled|     ━)' ; \
	    status=$${PIPESTATUS[0]}; \
	    if grep -q 'All targets skipped' $(SANITY_ROOT)/log 2>/dev/null; then echo "sanity tested nothing"; exit 1; fi; \
	    if grep 'Required program' $(SANITY_ROOT)/log 2>/dev/null; then echo "a sanity test was skipped: install what it names"; exit 1; fi; \
	    exit $$status

unit: venv
	@echo "== unit tests"
	@$(BIN)/pytest -q tests/unit

build-check: venv
	@echo "== collection build and install; execution environment context"
	@$(BIN)/pytest -q tests/build

# `make deps` in a clean Debian 12 root (debootstrap, cached; chroot as root): every host
# executable of lab/vcluster_lab/host_deps.py must resolve there afterwards.
fresh-root: venv
	@echo "== install recipe on a fresh Debian 12 root"
	@$(BIN)/pytest -q tests/host

# The contract tests run their servers on loopback ports and their site services on a private
# network: they run in the static lane, beside the integration tests. The tests that take the
# ranges' lock (a whole lab on the NMN; the claim itself) are `lab-cli`, in the lab lane before
# integration: in the static lane they would wait for the integration session to end.
LAB_CLI_TESTS := tests/lab/test_cli_lifecycle.py tests/lab/test_nmn_claim.py
contract: venv
	@echo "== lab contract and behaviour tests"
	@$(BIN)/pytest -q tests/lab $(addprefix --ignore=,$(LAB_CLI_TESTS))

lab-cli: venv
	@echo "== the lab's command line on the NMN: up, power cycle, SSH, down; the ranges' claim"
	@$(BIN)/pytest -q $(LAB_CLI_TESTS)

integration: venv
	@echo "== integration tests against the lab"
	@$(BIN)/pytest -q --durations=25 tests/integration

MOLECULE_JOBS ?= 1
molecule: venv ## every Molecule scenario (MOLECULE_JOBS=N: N at a time)
	@echo "== molecule scenarios"
	@$(BIN)/python tools/run-molecule.py --jobs $(MOLECULE_JOBS)

molecule-images: venv ## the images and site repository the Molecule scenarios use (cached; built here, not during integration)
	@$(BIN)/python tools/run-molecule.py --images-only

# ---------------------------------------------------------------------------- demo
# The demo's clock starts when make reads this file, so the time it reports includes set-up.
DEMO_START := $(shell date +%s.%N)
.PHONY: demo demo-destroy demo-down
demo: venv ## lab with 1 service + 4 compute nodes, deploy examples/vclusters/demo.yml, srun on it
	@$(BIN)/python tools/demo.py --started $(DEMO_START)

demo-down: venv ## remove the demo's lab (containers, networks, lab images); `make test` needs the lab down
	@$(BIN)/vcluster-lab down

demo-destroy: venv ## destroy the demo vCluster (the lab stays up; `vcluster-lab down` removes it)
	@$(BIN)/python tools/demo.py --destroy

# ---------------------------------------------------------------------------- build
.PHONY: build ee-context
build: venv
	@mkdir -p build
	@$(BIN)/ansible-galaxy collection build --force --output-path build .

# The execution environment's build context (ee/execution-environment.yml): the collection
# built from this checkout, then `ansible-builder create`. Building the image from it needs
# the base image from a registry: `podman build -f build/ee/context/Containerfile -t <tag>
# build/ee/context` where one is reachable (docs/awx.md). tests/build/test_ee.py checks it.
ee-context: venv
	@rm -rf build/ee && mkdir -p build/ee
	@$(BIN)/ansible-galaxy collection build --output-path build/ee . >/dev/null
	@mv build/ee/hpc-vcluster-*.tar.gz build/ee/hpc-vcluster.tar.gz
	@$(BIN)/ansible-builder create -f ee/execution-environment.yml -c build/ee/context

.PHONY: clean
clean:
	@rm -rf build $(CACHE)/sanity tests/output .pytest_cache

# ---------------------------------------------------------------------------- benchmarks
# ansible-inventory --list with the SMD inventory plugins against a seeded records-only lab (10,000 nodes,
# 40 labels) vs the same inventory as static YAML, in one run; prints the figures and checks the bars.
.PHONY: bench-inventory
bench-inventory: venv
	@$(BIN)/python tools/bench_inventory.py

# Every hostile manifest of tests/unit/manifest/hostile checked as vcluster_manifest does, against the demo
# manifest in the same run; prints the slowest refusal per class and checks the 5 s bar.
.PHONY: bench-manifest
bench-manifest: venv
	@$(BIN)/python tools/bench_manifest.py

# Layer 1 at scale: carve and release vClusters of 1,000 and 10,000 nodes on a seeded records-only lab with the
# modules (label, boot parameters, cloud-init, PKey, power; VLAN at 100 and 1,000); API requests and seconds per
# step and the ratio between the sizes (docs/layer1-scale.md). About 15 minutes on 2 cores.
.PHONY: bench-layer1
bench-layer1: venv
	@$(BIN)/python tools/bench_layer1.py

# deploy of 1 service + 4 compute nodes from cached images, the unchanged re-run (ratio, changed=0) against
# a re-run that applies the vServices anyway, and an image update of the 4 compute nodes (total, per node),
# on a lab of its own (or VCLUSTER_TEST_LAB_HOME's); prints the figures, writes .bench/lifecycle.json.
.PHONY: bench-lifecycle
bench-lifecycle: venv
	@$(BIN)/pytest -q -s -p no:cacheprovider tests/integration/bench_lifecycle.py

# Deploy and heal with the lab's faults on (20 % 5xx, latency, tokens of 30 s) against a run without: on a lab of
# its own (1 service + 2 compute nodes, under the NMN claim); prints seconds, retries and state checks, writes
# .bench/faults.json.
.PHONY: bench-faults
bench-faults: venv
	@$(BIN)/python tools/bench_faults.py
