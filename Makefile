# Oda Realtime. Quickstart: `make run` (server with demo data), `make test` (whole suite).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test test-django52 venv node browser bench clean

venv: $(STAMP)

$(STAMP): requirements.txt
	@python=$$(scripts/find-python) || exit 1; \
	  if [ ! -x $(PY) ]; then echo "Creating $(VENV) with $$python"; "$$python" -m venv $(VENV); fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

node: node_modules/.installed

node_modules/.installed: package.json $(wildcard package-lock.json)
	@if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
	@touch node_modules/.installed

run: venv
	DJANGO_DEBUG=1 $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=1 $(PY) manage.py seed_demo
	@echo
	@echo "Admin and live dashboard: http://$(HOST):$(PORT)/admin/  (log in as admin / admin-demo-pass)"
	@echo "A token:   curl -s -X POST http://$(HOST):$(PORT)/api/auth/token/ -d username=manager -d password=manager-demo-pass"
	@echo "A socket:  ws://$(HOST):$(PORT)/ws/?token=<access>  then send {\"event\":\"subscribe:inventory\",\"ack\":1}"
	@echo "Events flow when stock, orders or syncs change (admin edits). For 'manage.py simulate' from"
	@echo "another terminal, run both with REDIS_URL=redis://127.0.0.1:6379/0 (docs/events.md)."
	@echo
	DJANGO_DEBUG=1 $(PY) manage.py serve --bind $(HOST) --port $(PORT)

# The browser tests (Socket.IO in a page, the live dashboard) drive Debian's chromium; the
# deployment test (tests/ops/test_nginx.py) runs Debian's nginx with the shipped configuration.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "The browser tests need Chromium: install it (e.g. 'sudo apt-get install chromium'); they fail without it."; fi; }
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing nginx for the deployment test (deploy/nginx)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; \
	  else echo "The deployment test needs nginx: install it (e.g. 'sudo apt-get install nginx-light'); it fails without it."; fi; }

# Three workers, each file's tests on one worker (module-scoped servers stay shared): TEST_WORKERS=0 runs
# them in this process.
TEST_WORKERS ?= 3
test: venv $(if $(wildcard package.json),node) browser
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Fan-out benchmark against python-socketio (docs/benchmarks.md); BENCH_ARGS=--quick for a smoke run.
bench: venv
	$(PY) -m bench.run $(BENCH_ARGS)

# The realtime add-on also supports Django 5.2 LTS: its tests on a second venv.
VENV52 := .venv-django52
$(VENV52)/.installed: requirements.txt
	@python=$$(scripts/find-python) || exit 1; "$$python" -m venv $(VENV52)
	sed 's/^Django==.*/Django>=5.2,<5.3/' requirements.txt > $(VENV52)/requirements.txt
	$(VENV52)/bin/python -m pip install --quiet --disable-pip-version-check -r $(VENV52)/requirements.txt
	@touch $@

test-django52: $(VENV52)/.installed
	$(VENV52)/bin/python -m pytest tests/realtime -m "not slow" -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(VENV52) node_modules db.sqlite3 test-output
