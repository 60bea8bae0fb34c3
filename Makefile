# The two commands of the README: `make run` (CRM on sample_tenant.yaml with demo data) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
TENANT ?= sample_tenant.yaml
HOST   ?= 127.0.0.1
PORT   ?= 5000
ADMIN_PASSWORD ?= formwork-first-login

.PHONY: install run test test-fast browser-deps bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q engine web plugins >/dev/null  # bytecode, as a regular install has it
	touch $@

# Debian's Chromium and CJK fonts for the Playwright browser tests (Playwright's own download cannot work here).
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi 'Noto Sans CJK'; then \
		echo "installing chromium and fonts-noto-cjk (apt)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	fi

run: install
	$(BIN)/formwork check $(TENANT)
	$(BIN)/formwork migrate $(TENANT) --yes
	@$(BIN)/formwork user add $(TENANT) admin --role admin --display-name 管理员 --password $(ADMIN_PASSWORD) >/dev/null 2>&1 || true
	$(BIN)/formwork demo $(TENANT) --if-empty --size 30
	@echo ""
	@echo "  Formwork is starting on http://$(HOST):$(PORT)"
	@echo "  Log in as admin / $(ADMIN_PASSWORD) (you will be asked to choose a new password)"
	@echo ""
	$(BIN)/formwork serve $(TENANT) --host $(HOST) --port $(PORT)

test: install browser-deps
	$(BIN)/python -m pytest -n 2 -q

test-fast: install
	$(BIN)/python -m pytest -n 2 -q -m "not browser"

bench: install
	$(BIN)/python bench/import_customers.py
	$(BIN)/python bench/api_list.py

clean:
	rm -rf $(VENV) instance test-artifacts .pytest_cache
