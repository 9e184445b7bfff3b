"""Django settings for the chanx demo project.

Everything that differs between a laptop and a deployment comes from the
environment:

``SECRET_KEY``
    Required outside development; a fixed development key is used otherwise.
``DEBUG``
    ``1``/``true``/``yes``/``on`` to enable; off by default.
``ALLOWED_HOSTS``
    Comma-separated host names (default ``127.0.0.1,localhost``). Channels'
    ``AllowedHostsOriginValidator`` also uses it to check a WebSocket's
    ``Origin`` header, so a browser page must be served from one of these hosts.
``DATABASE_URL``
    A ``dj-database-url`` URL; SQLite in ``example/db.sqlite3`` otherwise.
``REDIS_URL`` / ``CHANNELS_PREFIX``
    Use the Redis channel layer (needed as soon as more than one process
    serves WebSockets); the in-memory layer otherwise.
``REDIS_MAX_CONNECTIONS``
    Connections per Redis pool (default 2000; redis-py 8's own cap is 100).
``CHANX_LOG_FORMAT``
    ``json`` (default) or ``console`` for structlog's pretty output.
``OTEL_EXPORTER_OTLP_ENDPOINT`` (and the other ``OTEL_*`` variables)
    Export spans over OTLP (see ``config/asgi.py``); no export without it.
``PROMETHEUS_MULTIPROC_DIR``
    Set (to an empty, writable directory) when several worker processes
    serve the app, so ``/metrics`` adds up all workers.
``METRICS_TOKEN``
    When set, ``/metrics`` requires ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

from chanx.telemetry.logs import configure_logging, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [
        item.strip()
        for item in os.environ.get(name, default).split(",")
        if item.strip()
    ]


SECRET_KEY = os.environ.get(
    "SECRET_KEY", "django-insecure-chanx-demo-development-key-change-me"
)
DEBUG = _env_flag("DEBUG")
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "chat",
    # Logs, spans and metrics for every consumer; nothing else to write.
    "chanx.telemetry",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

DATABASES: dict[str, dict[str, Any]]
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dict(dj_database_url.parse(os.environ["DATABASE_URL"]))}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
        }
    }

CHANNEL_LAYERS: dict[str, Any]
if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py >= 8 times socket reads out after 5 s by default: the
                # very 5 s channels_redis blocks in BZPOPMIN while a consumer
                # waits, so idle consumers crash ("Timeout reading from ...").
                # A longer timeout is no cure: a receive cancelled on disconnect
                # can then stay stuck in the read, leaking the task and its
                # connection and hanging shutdown. No timeout is redis-py < 8's
                # behaviour. A socket_timeout in REDIS_URL's query string wins.
                # redis-py 8 also caps a pool at 100 connections and raises
                # MaxConnectionsError beyond: every consumer's group_add/discard
                # takes one, so a mass disconnect of a few hundred sockets hits
                # it. Connections are short-lived; allow far more.
                "hosts": [
                    {
                        "address": os.environ["REDIS_URL"],
                        "socket_timeout": None,
                        "max_connections": int(
                            os.environ.get("REDIS_MAX_CONNECTIONS", "2000")
                        ),
                    }
                ],
                "prefix": os.environ.get("CHANNELS_PREFIX", "asgi"),
                # channels-redis's default of 100 bounds the backlog of all
                # of a process's connections at once (they share one Redis
                # list): a stall of a fraction of a second at a few hundred
                # group messages per second overflows it, and the overflow is
                # dropped without an error. More costs memory per slow client
                # (docs/operations-faults.md).
                "capacity": int(os.environ.get("CHANNELS_CAPACITY", "100")),
            },
        }
    }
else:
    # Only reaches consumers in this process: fine for `make run`, not for
    # several workers.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
}

CHANX = {
    "SEND_COMPLETION": False,
    "TELEMETRY": {"METRICS_TOKEN": os.environ.get("METRICS_TOKEN") or None},
}

# Django's and uvicorn's own log lines go through the same JSON renderer,
# redaction (uvicorn's access log would print ?token=...) and trace ids.
LOGGING = logging_config()
configure_logging()

AUTH_PASSWORD_VALIDATORS: list[dict[str, Any]] = []

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Must match tests/settings.py: the migrations are shared.
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
