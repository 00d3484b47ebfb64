# Brokage: `make run` (embedded, no servers) and `make test` (real services, every test).
SHELL := /bin/bash
PROFILE ?= embedded
PORT ?= 8000
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.stamp
DEV_STAMP := $(VENV)/.requirements-dev.stamp

.PHONY: run test test-fast test-integration lint bench faults services-up services-down clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

# Tests, the benchmark and the linters need more than the product does (requirements-dev.txt).
$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(DEV_STAMP)

venv: $(STAMP)

run: $(STAMP)  ## install, migrate, seed demo data and serve on 127.0.0.1:$(PORT) (PROFILE=dev for real services)
ifeq ($(PROFILE),dev)
	scripts/services.sh up
	set -a; eval "$$(scripts/services.sh env)"; set +a; \
	  $(PY) manage.py migrate_all && $(PY) manage.py seed_demo && \
	  PORT=$(PORT) exec $(PY) scripts/supervise.py --procfile Procfile.dev \
	    $$([ "$$BROKAGE_OUTBOX_RELAY_MODE" = celery ] && echo --procfile Procfile.relay-celery)
else
	BROKAGE_PROFILE=$(PROFILE) $(PY) manage.py migrate_all
	BROKAGE_PROFILE=$(PROFILE) $(PY) manage.py seed_demo
	BROKAGE_PROFILE=$(PROFILE) $(PY) manage.py runserver 127.0.0.1:$(PORT)
endif

test: $(DEV_STAMP)  ## install what the tests need, start the real services, run lint, the fast tier, the integration tier and the short fault suite
	scripts/install-test-deps.sh
	scripts/services.sh up
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-fast
	$(MAKE) --no-print-directory test-integration
	$(MAKE) --no-print-directory faults FAULTS_ARGS=--short

test-fast: $(DEV_STAMP)  ## the fast tier: test profile, in-process everything
	BROKAGE_PROFILE=test $(VENV)/bin/pytest -q -m "not integration" -p no:cacheprovider

test-integration: $(DEV_STAMP)  ## the integration tier against the services of scripts/services.sh
	set -a; eval "$$(scripts/services.sh env)"; set +a; \
	  $(VENV)/bin/pytest -q -m integration -p no:cacheprovider

lint: $(DEV_STAMP)  ## ruff and the import-linter contracts that keep the contexts apart
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

bench: $(DEV_STAMP)  ## the benchmarks on the dev profile, with the PostgreSQL ceiling measured in the same run (RELAY=thread|celery: one relay mode; both by default)
	scripts/services.sh up
	set -a; eval "$$(scripts/services.sh env)"; set +a; $(PY) -m bench $(if $(RELAY),--relay $(RELAY)) $(BENCH_ARGS)

faults: $(DEV_STAMP)  ## kill each part of the dev system under load (FAULTS_ARGS=--short: three faults), count what was lost
	scripts/services.sh up
	set -a; eval "$$(scripts/services.sh env)"; set +a; $(PY) -m faults $(FAULTS_ARGS)

services-up:  ## start PostgreSQL, Redis, Kafka and FerretDB on loopback
	scripts/services.sh up

services-down:  ## stop them (data stays under var/services)
	scripts/services.sh down

clean:  ## remove the embedded profile's data
	rm -rf var/db var/documents
