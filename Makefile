# make run   - install into .venv if needed, migrate, serve the demo on 127.0.0.1:$(PORT)
# make test  - install, make sure Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432)
#              answer, lint, type-check, test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: bench-inprocess bench-telemetry bench-telemetry-parts run test install lint typecheck pytest redis postgres prometheus migrate demo-data clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { \
	  echo "venv failed; installing python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

redis:
	bash scripts/ensure-redis.sh

prometheus:
	bash scripts/ensure-prometheus.sh

postgres:
	bash scripts/ensure-postgres.sh

migrate: install
	cd example && ../$(BIN)/python manage.py migrate --noinput

demo-data: migrate
	cd example && ../$(BIN)/python manage.py seed_demo

# Pretty console logs on a laptop; deployments get JSON lines (the default).
run: demo-data
	cd example && CHANX_LOG_FORMAT=$${CHANX_LOG_FORMAT:-console} \
	  ../$(BIN)/uvicorn config.asgi:application --host 127.0.0.1 --port $(PORT)

lint: install
	$(BIN)/ruff check chanx tests example benchmarks
	$(BIN)/ruff format --check chanx tests example benchmarks

typecheck: install
	PYTHONPATH=example $(BIN)/mypy chanx tests benchmarks

pytest: install redis postgres prometheus
	$(BIN)/pytest

test: lint typecheck pytest

bench-telemetry: install
	$(BIN)/python benchmarks/echo_telemetry.py

bench-telemetry-parts: install
	$(BIN)/python benchmarks/telemetry_parts.py

bench-inprocess: install
	$(BIN)/python benchmarks/echo_inprocess.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache example/db.sqlite3
