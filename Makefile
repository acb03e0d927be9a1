# Two commands for a newcomer: `make run` and `make test`. Both set up .venv first, as does
# `make lint` (ruff and mypy, which CI runs before the tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run prod test lint bench setup clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

# Development defaults: DEBUG on, the built-in simulator unless KIE_API_KEY is set. The settings
# decide whether the simulator is used (KIE_USE_SIMULATOR), so ask them whether to start it.
USES_SIMULATOR := from django.conf import settings; print("simulator" if settings.KIE_USE_SIMULATOR else "")
run: export DEBUG ?= true
run: $(STAMP)
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py createcachetable
	$(BIN)/python manage.py bootstrap
	$(BIN)/honcho start -f Procfile web worker $$($(BIN)/python manage.py shell -v0 -c '$(USES_SIMULATOR)')

# Production on one host: settings from the environment (or honcho's .env), DEBUG off, gunicorn
# with WhiteNoise for static files, and the worker. docs/deployment.md says what to set.
prod: $(STAMP)
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input
	$(BIN)/python manage.py createcachetable
	$(BIN)/honcho start -f Procfile web-prod worker

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# mypy's Django plugin imports config.settings, which want real secrets unless DEBUG is on.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=true $(BIN)/mypy

# Every benchmark (bench/), then a table of their figures; BENCH_ARGS=--quick for a short run.
bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
