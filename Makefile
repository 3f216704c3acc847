# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
export DBT_PROFILES_DIR := $(CURDIR)

.PHONY: setup demo test test-fast faults lint clean

setup: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	uv sync --frozen
	@# Imports stay fast where PYTHONDONTWRITEBYTECODE is set; a file that fails to compile is only slower.
	-@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1
	cd dbt_project && CHAT_ANALYTICS_HOME=$(CURDIR)/warehouse ../$(BIN)/dbt parse --quiet
	@touch $@

demo: setup
	$(BIN)/chat-analytics demo

test: setup
	$(BIN)/pytest

# The quick loop while editing: everything but the builds, the replays, Spark and the faults.
test-fast: setup
	$(BIN)/pytest -m "not slow"

# Every fault-injection trial (make test runs one of each kind).
faults: setup
	CHAT_ANALYTICS_FAULT_TRIALS=all $(BIN)/pytest -m faults

# sqlfluff's dbt templater compiles against a scratch warehouse, never the real one.
lint: setup
	$(BIN)/ruff check .
	rm -rf $(CURDIR)/.lint-warehouse && mkdir -p $(CURDIR)/.lint-warehouse
	cd dbt_project && CHAT_ANALYTICS_HOME=$(CURDIR)/.lint-warehouse ../$(BIN)/sqlfluff lint models

clean:
	rm -rf $(VENV) warehouse dbt_project/target dbt_project/logs
