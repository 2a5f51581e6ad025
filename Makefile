# Every target installs what it needs into .venv, so a fresh clone only needs Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The mock receiver runs in the background and stops with the service (Ctrl-C stops both).
# Other ports: make run PORT=9000 MOCK_PORT=9081 (the embedded Valkey: COUNTER_EMBEDDED_PORT).
PORT ?= 8000
MOCK_PORT ?= 8081
run: $(STAMP)
	@echo "Message Counter  http://127.0.0.1:$(PORT)  (embedded Valkey data in ./.data)"
	@echo "Mock receiver    http://127.0.0.1:$(MOCK_PORT)/daily-totals"
	@echo "Try: curl -i -X POST http://127.0.0.1:$(PORT)/webhooks/messages -H 'content-type: application/json' \\"
	@echo "       -d '{\"message_id\": \"m-1\", \"account_id\": \"acc_123\", \"created_at\": \"2025-09-18T10:15:00Z\"}'"
	@echo "Then: curl 'http://127.0.0.1:$(PORT)/counts?account_id=acc_123&from=2025-09-18T00:00:00Z&to=2025-09-19T00:00:00Z'"
	@trap 'kill $$mock_pid 2>/dev/null; wait $$mock_pid' EXIT INT TERM; \
	$(BIN)/mock-external --port $(MOCK_PORT) & mock_pid=$$!; \
	COUNTER_DAILY_TOTAL_URL=http://127.0.0.1:$(MOCK_PORT)/daily-totals $(BIN)/counter serve --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check counter mock_external tests
	$(BIN)/ruff format --check counter mock_external tests
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m tests.bench.run

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
