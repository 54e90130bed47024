# Two commands: `make run` brings the service up, `make test` installs and runs the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-client lint install system-deps services-check bench bench-deps chaos clean

# The Python client (clients/python) is installed beside the service: its tests and one pipeline
# test use it.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet -e "./clients/python[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m scripts.run_dev

# The browser tests drive Debian's Chromium (no browser is downloaded).
system-deps:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: sudo apt-get install chromium"; exit 1; fi; }
	@# The reverse-proxy tests start Debian's nginx in front of gunicorn and uvicorn.
	@test -x /usr/sbin/nginx || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null; \
	  else echo "nginx is missing: sudo apt-get install nginx-light"; exit 1; fi; }

services-check: $(STAMP)
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python scripts/check_services.py

# `make test` runs the whole suite, then the client's tests. With PYTEST_ARGS (a selection, e.g.
# PYTEST_ARGS="tests/api -k send") it runs only that selection: not the client's tests too.
test: $(STAMP) system-deps services-check
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/pytest $(PYTEST_ARGS)
	$(if $(PYTEST_ARGS),,$(MAKE) --no-print-directory test-client)

# The client's own tests, against this service started as `make run` starts it (their
# conftest.py), in a database of their own beside DATABASE_URL's.
test-client: $(STAMP) services-check
	cd clients/python && ../../$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/mypy
	cd clients/python && ../../$(BIN)/mypy
	@# Django's deployment checklist on the production settings as a release has them: static
	@# files collected (into a scratch STATIC_ROOT, as the Dockerfile's build step does; without
	@# them notifier.E003 stops the check), a freshly generated key and an https PUBLIC_BASE_URL.
	static="$$(mktemp -d)" && trap 'rm -rf "$$static"' EXIT && \
	  export DJANGO_SETTINGS_MODULE=config.settings.prod DJANGO_STATIC_ROOT="$$static" \
	  PUBLIC_BASE_URL=https://notify.example.com \
	  DJANGO_SECRET_KEY="$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(64))')" && \
	  $(BIN)/python manage.py collectstatic --noinput -v 0 && \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING
	@if command -v promtool >/dev/null; then promtool check rules docker/prometheus/alerts.yml; \
	else echo "promtool not installed (apt-get install prometheus): alert rules NOT checked"; fi
	$(BIN)/hadolint docker/Dockerfile
	@# The reverse proxy's committed config, rendered for local ports, through `nginx -t`.
	$(BIN)/python -m harness.serving --check

# The peaks are taken with wrk (a C load generator): the asyncio client's own CPU, on the same
# cores as the servers, would hold the figures down. Without wrk the bench falls back to it.
bench-deps: system-deps
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; \
	  else echo "wrk is missing (the bench falls back to its asyncio client): sudo apt-get install wrk"; fi; }

bench: $(STAMP) bench-deps
	$(BIN)/python -m bench

chaos: $(STAMP) bench-deps
	$(BIN)/python -m bench.chaos

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
