SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# Targets share .build/ and must run in the order written, even under `make -j`.
.NOTPARALLEL:

PYTHON ?= python3
VENV := .venv
VENV_BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.stamp
REQUIREMENTS := tests/requirements.txt

COLLECTION_NAMESPACE := longrun
COLLECTION_NAME := jobs
BUILD_DIR := .build
DIST_DIR := $(BUILD_DIR)/dist
COLLECTIONS_DIR := $(CURDIR)/$(BUILD_DIR)/collections
COLLECTION_ENV := ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS_DIR)
# The demo needs ansible-core alone: its own small venv, so that `make demo` never waits for the test toolchain.
DEMO_VENV := $(BUILD_DIR)/demo-venv
DEMO_VENV_BIN := $(DEMO_VENV)/bin
DEMO_STAMP := $(DEMO_VENV)/.stamp
DEMO_REQUIREMENTS := examples/requirements.txt
DEMO_COLLECTIONS_DIR := $(CURDIR)/$(BUILD_DIR)/demo-collections
# ansible-lint warns unless the venv it runs from is first on PATH.
VENV_PATH_ENV := PATH=$(CURDIR)/$(VENV_BIN):$$PATH

SSHD := /usr/sbin/sshd

# ansible-test only runs from inside ansible_collections/<namespace>/<name>.
SANITY_ROOT := $(BUILD_DIR)/sanity/ansible_collections/$(COLLECTION_NAMESPACE)/$(COLLECTION_NAME)
SANITY_LOG := $(CURDIR)/$(BUILD_DIR)/sanity.log
SANITY_PYTHON ?= 3.11
# Left out of the sanity copy: local environments, build output, and VCS metadata.
SANITY_COPY_EXCLUDES := ./.venv ./.build ./.git ./.ansible ./tests/output ./.pytest_cache __pycache__ '*.pyc' '*.tar.gz'
ANSIBLE_TEST_CACHE := $(HOME)/.ansible/test/cache
GET_PIP_OFFLINE := tests/tools/get_pip_offline.py

PYTEST := $(VENV_BIN)/pytest -p no:cacheprovider
# Two pytest-xdist workers, a test file each at a time: the integration tests mostly wait for jobs,
# so two of them share the 2 cores of CI well. PYTEST_WORKERS= runs them in one process.
PYTEST_WORKERS ?= -n 2 --dist loadfile

# Combos of ansible-core and controller Python; the pins live in tests/matrix/<combo>.txt.
MATRIX_RUNNER := tests/matrix/run_matrix.py
MATRIX ?=
MATRIX_ARGS := $(if $(strip $(MATRIX)),--combos '$(MATRIX)')

.PHONY: help venv sshd-package collection demo sanity lint changelog-lint molecule units integration test-matrix \
	test-matrix-smoke test bench clean

help:
	@echo 'Targets:'
	@echo '  venv            create $(VENV) and install $(REQUIREMENTS)'
	@echo '  sshd-package    install openssh-server and acl when missing (root only)'
	@echo '  collection      build the collection and install it under $(BUILD_DIR)/collections'
	@echo '  demo            run examples/demo.yml against examples/inventory.yml'
	@echo '  sanity          ansible-test sanity (log: $(BUILD_DIR)/sanity.log)'
	@echo '  lint            ansible-lint --profile production'
	@echo '  changelog-lint  antsibull-changelog lint'
	@echo '  molecule        molecule test --all: the role scenarios in extensions/molecule'
	@echo '  units           pytest tests/unit'
	@echo '  integration     pytest tests/integration'
	@echo '  test-matrix     sanity + integration on ansible-core 2.18-2.21 (MATRIX=core-2.18,... selects)'
	@echo '  test-matrix-smoke  key integration tests on core-2.18 (Python 3.8 target) and core-2.21'
	@echo '  test            everything above except demo and test-matrix, ending with one pytest run'
	@echo '  bench           stock async against longrun.jobs; writes docs/performance.md (not part of test)'
	@echo '  clean           remove $(BUILD_DIR) and test output (keeps $(VENV))'

venv: $(VENV_STAMP)

# An existing venv is reused rather than recreated: pip brings it in line with the pins.
$(VENV_STAMP): $(REQUIREMENTS)
	@if [[ ! -x $(VENV_BIN)/python ]]; then \
		echo '==> creating $(VENV) with $(PYTHON)'; \
		$(PYTHON) -m venv $(VENV); \
	fi
	@echo '==> installing $(REQUIREMENTS)'
	$(VENV_BIN)/python -m pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	@touch $@

# openssh-server for the ssh transport, and acl (setfacl) for the become test in which one
# unprivileged user hands a launch request to another.
sshd-package:
	@missing=(); \
	[[ -x $(SSHD) ]] || missing+=(openssh-server); \
	command -v setfacl >/dev/null || missing+=(acl); \
	if [[ $${#missing[@]} -eq 0 ]]; then exit 0; fi; \
	if [[ $$(id -u) -ne 0 ]]; then \
		if [[ ! -x $(SSHD) ]]; then \
			echo 'sshd-package: $(SSHD) is missing; integration tests need it.' >&2; \
			echo "sshd-package: install $${missing[*]} as root (apt-get install $${missing[*]}), then rerun." >&2; \
			exit 1; \
		fi; \
		echo 'sshd-package: setfacl is missing, so one become test will be skipped (apt-get install acl).' >&2; \
		exit 0; \
	fi; \
	echo "==> installing $${missing[*]}"; \
	apt-get update -q; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$${missing[@]}"

collection: venv
	@rm -rf $(DIST_DIR)
	$(VENV_BIN)/ansible-galaxy collection build --force --output-path $(DIST_DIR)
	$(COLLECTION_ENV) $(VENV_BIN)/ansible-galaxy collection install --force --offline -p $(COLLECTIONS_DIR) \
		$(DIST_DIR)/$(COLLECTION_NAMESPACE)-$(COLLECTION_NAME)-*.tar.gz

$(DEMO_STAMP): $(DEMO_REQUIREMENTS)
	@if [[ ! -x $(DEMO_VENV_BIN)/python ]]; then \
		echo '==> creating $(DEMO_VENV) with $(PYTHON) (ansible-core only)'; \
		$(PYTHON) -m venv $(DEMO_VENV); \
	fi
	@echo '==> installing $(DEMO_REQUIREMENTS)'
	$(DEMO_VENV_BIN)/python -m pip install --quiet --disable-pip-version-check -r $(DEMO_REQUIREMENTS)
	@touch $@

# Built and installed apart from `collection`, with the demo venv's ansible-galaxy.
demo: $(DEMO_STAMP)
	@rm -rf $(BUILD_DIR)/demo-dist
	@$(DEMO_VENV_BIN)/ansible-galaxy collection build --force --output-path $(BUILD_DIR)/demo-dist >/dev/null
	@ANSIBLE_COLLECTIONS_PATH=$(DEMO_COLLECTIONS_DIR) $(DEMO_VENV_BIN)/ansible-galaxy collection install --force \
		--offline -p $(DEMO_COLLECTIONS_DIR) $(BUILD_DIR)/demo-dist/$(COLLECTION_NAMESPACE)-$(COLLECTION_NAME)-*.tar.gz >/dev/null
	ANSIBLE_COLLECTIONS_PATH=$(DEMO_COLLECTIONS_DIR) $(DEMO_VENV_BIN)/ansible-playbook -i examples/inventory.yml \
		examples/demo.yml

# --venv gives each sanity test its own virtualenv under ~/.ansible/test/venv, built from PyPI.
# Those virtualenvs start without pip, and ansible-test bootstraps it with a get-pip.py script from
# ci-files.testing.ansible.com, which is unreachable offline. The cache is seeded with
# $(GET_PIP_OFFLINE) under the name ansible-test looks for, so nothing is downloaded from there.
# No test is skipped: the ones that need a missing tool (shellcheck, pwsh) skip themselves.
sanity: venv
	@rm -rf $(BUILD_DIR)/sanity
	@mkdir -p $(SANITY_ROOT)
	@tar -c $(addprefix --exclude=,$(SANITY_COPY_EXCLUDES)) . | tar -x -C $(SANITY_ROOT)
	@# ansible-test lists files with git from the nearest .git upwards; the repo's own .git ignores
	@# .build/, which would hide every file, so the copy gets a repository of its own.
	@git -C $(SANITY_ROOT) init --quiet
	@pip_version=$$($(VENV_BIN)/python -c 'import sys, types; \
		from ansible_test._internal.python_requirements import get_venv_packages; \
		print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))["pip"])' $(SANITY_PYTHON)); \
	install -D -m 0644 $(GET_PIP_OFFLINE) $(ANSIBLE_TEST_CACHE)/get_pip_$${pip_version//./_}.py
	@echo '==> ansible-test sanity --venv --python $(SANITY_PYTHON) (log: $(SANITY_LOG))'
	@cd $(SANITY_ROOT) && \
	if $(CURDIR)/$(VENV_BIN)/ansible-test sanity --venv --python $(SANITY_PYTHON) --color no >$(SANITY_LOG) 2>&1; then \
		echo 'sanity: passed'; \
	else \
		grep -E '^(ERROR|FATAL):' $(SANITY_LOG) || tail -n 40 $(SANITY_LOG); \
		echo 'sanity: FAILED (full log: $(SANITY_LOG))' >&2; \
		exit 1; \
	fi

lint: venv collection
	$(COLLECTION_ENV) $(VENV_PATH_ENV) $(VENV_BIN)/ansible-lint --profile production

changelog-lint: venv
	$(VENV_BIN)/antsibull-changelog lint

# Molecule finds the scenarios in extensions/molecule from the collection root (galaxy.yml), and
# extensions/molecule/config.yml is their shared base. The instance is a private sshd on 127.0.0.1.
# "CRITICAL 'extensions/molecule/default/molecule.yml' glob failed" is harmless: molecule looks for a
# default scenario to share instances between scenarios, and each of ours has its own.
molecule: venv sshd-package collection
	$(COLLECTION_ENV) $(VENV_PATH_ENV) $(VENV_BIN)/molecule test --all

units: venv collection
	$(COLLECTION_ENV) $(PYTEST) tests/unit

integration: venv sshd-package collection
	$(COLLECTION_ENV) $(PYTEST) $(PYTEST_WORKERS) tests/integration

# Each combo has its own venv (reused while its pins do not change), collection and logs under
# $(BUILD_DIR)/matrix/<combo>/; a summary table ends the run. About 25 minutes (35 on a cold machine).
test-matrix: sshd-package
	$(PYTHON) $(MATRIX_RUNNER) $(MATRIX_ARGS)

# The subset `make test` runs: no sanity, four key integration tests over local and ssh.
test-matrix-smoke: sshd-package
	$(PYTHON) $(MATRIX_RUNNER) --smoke $(MATRIX_ARGS)

# One pytest run comes last, so the final line printed is pytest's own summary.
test: venv sshd-package collection sanity lint changelog-lint molecule test-matrix-smoke
	$(COLLECTION_ENV) $(PYTEST) $(PYTEST_WORKERS) tests/unit tests/integration

# Not part of `test`: it takes about 45 minutes with the defaults on a quiet machine. BENCH_REPEATS (default 3),
# BENCH_B5_SECONDS (default 60) and BENCH_TRANSPORTS (default local,ssh) shorten it.
bench: venv sshd-package collection
	$(COLLECTION_ENV) $(VENV_BIN)/python benchmarks/bench.py

clean:
	rm -rf $(BUILD_DIR) tests/output .pytest_cache .ansible
