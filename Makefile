# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

# The PostgreSQL server tests and benchmarks use (each test run makes its own
# databases on it), and the Redis benchmarks use (tests start a private one).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/yomira
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run stop test install migrate bench lint format clean mutate mutate-again

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

.env:
	$(BIN)/python -c "import secrets; print(f'DEBUG=true\nSANDBOX=true\nSECRET_KEY={secrets.token_urlsafe(48)}\nAUDIT_HMAC_KEY={secrets.token_urlsafe(48)}\nDEMO_PASSWORD={secrets.token_urlsafe(9)}')" > .env
	@echo "Wrote .env with fresh local secrets (DEBUG=true; the embedded PostgreSQL in var/ unless DATABASE_URL is set; SANDBOX=true: the simulated Yomira stack and drills)."

# The set-up steps log at WARNING only, so the demo logins are not buried under
# the audit log's head lines.
run: $(STAMP) .env
	LOG_LEVEL=WARNING $(BIN)/python manage.py migrate --no-input
	LOG_LEVEL=WARNING $(BIN)/python manage.py import_runbook
	LOG_LEVEL=WARNING $(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runconsole --host $(HOST) --port $(PORT)

# tests/stack.py brings up what the suite needs (PostgreSQL started if installed
# but down, a private Redis, Debian's Chromium when missing), gives the run its own
# databases, then runs pytest. pytest's exit code 5 (no tests) is a failure.
test: $(STAMP)
	@$(BIN)/python tests/stack.py $(PYTEST_ARGS)

# Mutation testing of the safety-critical code (slow, so not part of `make test`):
# which functions, and which tests judge them, are in pyproject's [tool.mutmut].
MUTATE ?= $(shell $(BIN)/python -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml','rb'))['tool']['yomira']['mutate']))")
mutate: $(STAMP)
	@$(BIN)/python tests/stack.py --mutate $(MUTATE)

# Only the last run's survivors, after adding the tests that should kill them.
mutate-again: $(STAMP)
	@$(BIN)/python tests/stack.py --mutate-again $(MUTATE)

# Benchmarks run with production settings against the shared local services.
BENCH_ENV := DEBUG=false SANDBOX=false LOG_LEVEL=WARNING SECRET_KEY=test-only-secret AUDIT_HMAC_KEY=test-only-audit-key \
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL)

bench: $(STAMP)
	$(BENCH_ENV) $(BIN)/python manage.py collectstatic --no-input -v0
	$(BENCH_ENV) $(BIN)/python bench/run.py $(BENCH)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# What `make run` may leave running if it was killed (Ctrl+C stops it all itself).
stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m yomira_console.embedded var; fi

clean:
	@if [ -x $(BIN)/python ] && [ -d var ]; then $(BIN)/python -m yomira_console.embedded var; fi
	@echo "make clean deletes: .venv/ (the virtualenv); var/ (make run's data: the embedded"
	@echo "PostgreSQL with every incident, account and audit event, the broker's queue, the"
	@echo "simulated Yomira stack); staticfiles/; test-artifacts/; mutants/; the pytest, ruff"
	@echo "and import-linter caches. It keeps .env (your local secrets and demo password)."
	rm -rf $(VENV) var staticfiles test-artifacts .pytest_cache .ruff_cache .import_linter_cache mutants
