# The chanx demo (example/) as a container image: uvicorn (via chanx.serve) serving
# config.asgi:application on port 8000, as an unprivileged user, ready for a
# read-only root filesystem (only /tmp needs to be writable).
#
#   docker build -t chanx-demo:dev .
#   docker run --rm -p 8000:8000 -e REDIS_URL=redis://host.docker.internal:6379/0 chanx-demo:dev
#
# Migrations are not run here: deploy/base/migrate-job.yaml runs them once per
# rollout (see docs/operations.md).

# --- build: install chanx with the demo extra into a self-contained venv ---
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# pyproject.toml names README.md as the long description, so both are needed.
COPY pyproject.toml README.md ./
COPY chanx ./chanx
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install ".[demo]"

# --- runtime ---
FROM python:3.12-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=config.settings
# A fixed numeric id, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 chanx \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin chanx
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY example/ ./
# Byte-compile now: with a read-only root filesystem nothing can be written later.
RUN python -m compileall -q /app
USER 10001:10001
EXPOSE 8000
# One worker per container: scale with replicas (docs/operations.md says why).
# chanx.serve is uvicorn (every uvicorn option works) with a draining
# shutdown: on SIGTERM it closes chanx WebSockets with 1001 within
# --drain-timeout, then gives what is left --timeout-graceful-shutdown and
# flushes spans. Keep the sum below terminationGracePeriodSeconds minus the
# preStop sleep (deploy/base/deployment.yaml).
CMD ["python", "-m", "chanx.serve", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "1", "--drain-timeout", "30", "--timeout-graceful-shutdown", "5"]
