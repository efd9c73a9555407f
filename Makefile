# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

# Tests always use PostgreSQL and Redis (override for another server).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/yomira
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test install migrate bench lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

.env:
	$(BIN)/python -c "import secrets; print(f'DEBUG=true\nSECRET_KEY={secrets.token_urlsafe(48)}\nAUDIT_HMAC_KEY={secrets.token_urlsafe(48)}\nDEMO_PASSWORD={secrets.token_urlsafe(9)}')" > .env
	@echo "Wrote .env with fresh local secrets (DEBUG=true, SQLite unless DATABASE_URL is set)."

run: $(STAMP) .env
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py import_runbook
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runconsole --host $(HOST) --port $(PORT)

# The suite runs with production settings (DEBUG off, hashed static files).
TEST_ENV := DEBUG=false SECRET_KEY=test-only-secret AUDIT_HMAC_KEY=test-only-audit-key \
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL)

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls
# there are still synchronous and safe, hence DJANGO_ALLOW_ASYNC_UNSAFE.
# pytest's exit code 5 (no tests collected) is a failure like any other.
test: $(STAMP)
	@$(TEST_ENV) $(BIN)/python manage.py collectstatic --no-input -v0
	@$(TEST_ENV) DJANGO_ALLOW_ASYNC_UNSAFE=true $(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

bench: $(STAMP)
	$(TEST_ENV) $(BIN)/python manage.py collectstatic --no-input -v0
	$(TEST_ENV) $(BIN)/python bench/run.py $(BENCH)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
