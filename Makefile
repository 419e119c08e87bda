# avhopp: `make run` serves the app on SQLite with development keys; `make test` runs everything.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=

.PHONY: install translations run test test-fast test-e2e lint bench load security clean

$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
	  { echo "Python 3.11 is required (found $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) translations

translations: $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -d avhopp/translations >/dev/null

run: install
	$(BIN)/avhopp init-dev
	$(BIN)/avhopp db upgrade
	$(BIN)/avhopp users ensure-admin
	@# A newcomer sees a living system: synthetic, clearly marked demo tracks on an empty database.
	$(BIN)/avhopp dev seed --tracks 20 --if-empty
	$(BIN)/avhopp dev seed-relatives --tracks 8 --if-empty
	@echo "Serving on http://$(HOST):$(PORT)/ with the scheduler beside it (Ctrl-C stops both;"
	@echo "reminder mails are written to instance/mail)"
	@# The scheduler is a separate process, never inside a web worker; the trap ends it with us.
	$(BIN)/avhopp scheduler & scheduler=$$!; trap 'kill $$scheduler 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gunicorn --bind $(HOST):$(PORT) --workers 2 --access-logfile - \
	  --access-logformat '%(h)s "%(m)s %(U)s" %(s)s %(M)sms' wsgi:app

lint: install
	$(BIN)/ruff check avhopp tests tools migrations wsgi.py
	$(BIN)/lint-imports --config setup.cfg
	$(BIN)/bandit -q -r avhopp tools -c bandit.yaml

test: install lint
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -x -q $(PYTEST_ARGS)

# Browser tests only (Playwright driving /usr/bin/chromium); `make test` runs them too.
test-e2e: install
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m tests.bench.run

# Load test (issue 9): gunicorn with 4 workers on SQLite and PostgreSQL under a locust mix;
# writes docs/load-test.md. LOAD_TRACKS, LOAD_CLIENTS, LOAD_SECONDS tune it.
load: install
	$(BIN)/pip install --quiet -e '.[dev,load]'
	$(BIN)/python -m tools.load.run

# Security scan (issue 9): sqlmap and wapiti (Debian packages, installed here when missing)
# against a local gunicorn instance, logged in; writes docs/security-scan.md, fails on a finding.
security: install
	@command -v sqlmap >/dev/null && command -v wapiti >/dev/null || \
	  { sudo -n true 2>/dev/null && SUDO=sudo; $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq sqlmap wapiti; }
	$(BIN)/python -m tools.security.run

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
