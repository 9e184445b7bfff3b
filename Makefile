# make run   - install into .venv if needed, migrate, serve the demo on 127.0.0.1:$(PORT)
# make test  - install, make sure Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432)
#              answer, lint, type-check, test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed
PY_DIRS := chanx tests example benchmarks loadtests grafana deploy/prometheus scripts
# grafana/ needs grafana-foundation-sdk (Python 3.11+); expanded when typecheck
# runs, i.e. after the install.
MYPY_DIRS = chanx tests benchmarks loadtests deploy/prometheus \
  $(shell $(BIN)/python -c "import grafana_foundation_sdk" 2>/dev/null && echo grafana)

.PHONY: valgrind bench bench-gc bench-profile bench-inprocess bench-telemetry bench-telemetry-parts run test install lint typecheck pytest redis postgres prometheus migrate demo-data clean

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

valgrind:
	bash scripts/ensure-valgrind.sh

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
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)

typecheck: install
	PYTHONPATH=example $(BIN)/mypy $(MYPY_DIRS)

pytest: install redis postgres prometheus valgrind
	$(BIN)/pytest

test: lint typecheck pytest

# Live ratios under real uvicorn servers (a few minutes; BENCH_QUICK=1: short).
bench: install redis
	$(BIN)/python benchmarks/live.py

# py-spy profile of one live server under echo load (needs `pip install py-spy`).
bench-profile: install
	$(BIN)/python benchmarks/profile_live.py $(ARGS)

# Round-trip latency with and without chanx.serve's startup heap freeze.
bench-gc: install
	$(BIN)/python benchmarks/gc_pauses.py

bench-telemetry: install
	$(BIN)/python benchmarks/echo_telemetry.py

bench-telemetry-parts: install
	$(BIN)/python benchmarks/telemetry_parts.py

bench-inprocess: install
	$(BIN)/python benchmarks/echo_inprocess.py

.PHONY: deploy-check
# Render both kustomize overlays, validate them (kubernetes-validate --strict,
# Kubernetes 1.29 and 1.33, offline) and run the static manifest checks.
deploy-check: install
	set -eo pipefail; for overlay in dev prod; do for version in 1.29.0 1.33.0; do \
	  $(BIN)/kubectl kustomize deploy/overlays/$$overlay \
	    | $(BIN)/kubernetes-validate --strict --quiet -k $$version -; \
	done; done
	$(BIN)/pytest -q -p no:cacheprovider tests/ops/test_manifests.py tests/ops/test_manifests_pods.py

.PHONY: rules-check dashboards

# Alerting rules: promtool syntax check and unit tests, PrometheusRule up to date.
rules-check: install prometheus
	promtool check rules deploy/prometheus/rules.yml
	promtool test rules deploy/prometheus/tests/*.yml
	$(BIN)/python deploy/prometheus/generate.py --check
	$(BIN)/python grafana/dashboards.py --check

# Regenerate deploy/base/prometheusrule.yaml and grafana/dashboards/*.json.
dashboards: install
	$(BIN)/python deploy/prometheus/generate.py
	$(BIN)/python grafana/dashboards.py

# pip-audit over the installed environment. Exit 2 (not a pass) when packages
# could not be looked up, e.g. the vulnerability service is unreachable.
.PHONY: audit
audit: install
	$(BIN)/python scripts/audit.py

.PHONY: loadtest
# Locust against the demo (loadtests/README.md): WORKERS=1|2 uvicorn processes
# behind one Redis, SCENARIO=mixed|ping|chat|broadcast|churn, USERS users for
# DURATION seconds; reports in loadtests/reports/. Exits non-zero when an SLO
# gate fails; LOADTEST_ARGS go to locust (e.g. "--max-p99-ms 250").
WORKERS ?= 1
USERS ?= 200
DURATION ?= 60
SCENARIO ?= mixed
loadtest: install redis
	$(BIN)/python -m loadtests.run --workers $(WORKERS) --users $(USERS) \
	  --duration $(DURATION) --scenario $(SCENARIO) -- $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache example/db.sqlite3
