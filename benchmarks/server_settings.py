"""Django settings for the benchmark servers (``benchmarks/server_app.py``).

Every server process of a run loads these settings; only the environment
differs between them:

``BENCH_TELEMETRY``
    ``on``: ``chanx.telemetry`` with its defaults (spans, metrics, log
    context), spans exported over OTLP by a ``BatchSpanProcessor`` when
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, JSON logs at ``INFO`` (the
    demo's level) to ``BENCH_LOG_FILE``. ``off``: ``CHANX["TELEMETRY"] =
    "disabled"`` and the same JSON pipeline at ``WARNING``, so nothing is
    logged per frame or per connection.
``BENCH_FRAME_LOGS``
    ``off``: no ``message_received``/``message_sent`` line per frame.
``BENCH_LOG_LEVEL`` / ``BENCH_SIGNALS``
    Profiling aids: another log level; a comma list of the signals to keep
    (``logs,traces,metrics``).
``BENCH_DB``
    The SQLite file holding the users and tokens (seeded by the harness).
``REDIS_URL`` / ``CHANNELS_PREFIX``
    Use the Redis channel layer instead of the in-memory one.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from chanx.settings import DEFAULTS as CHANX_DEFAULTS
from chanx.telemetry.logs import configure_logging, logging_config

TELEMETRY = os.environ.get("BENCH_TELEMETRY", "on") == "on"
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL") or ("INFO" if TELEMETRY else "WARNING")

SECRET_KEY = "benchmarks-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "chanx.telemetry",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchmarks.server_settings"
urlpatterns: list[Any] = []  # HTTP never reaches Django here
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB", "bench.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

CHANNEL_LAYERS: dict[str, Any]
if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # As in the demo: no read timeout on the blocking receive.
                "hosts": [{"address": os.environ["REDIS_URL"], "socket_timeout": None}],
                "prefix": os.environ.get("CHANNELS_PREFIX", "bench"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
    ],
}

# Production defaults otherwise: per-frame log lines on, no completion frames.
CHANX: dict[str, Any] = {"SEND_COMPLETION": False}
if "RATE_LIMIT" in CHANX_DEFAULTS:
    # Clients here send as fast as the server answers, on purpose; plain
    # Channels has no per-connection rate limit to compare with.
    CHANX["RATE_LIMIT"] = False
if os.environ.get("BENCH_FRAME_LOGS") == "off":
    CHANX["LOG_RECEIVED_MESSAGE"] = CHANX["LOG_SENT_MESSAGE"] = False
if not TELEMETRY:
    CHANX["TELEMETRY"] = "disabled"
elif os.environ.get("BENCH_SIGNALS"):
    # Profiling aid: "traces,metrics" keeps only those signals on.
    wanted = os.environ["BENCH_SIGNALS"].split(",")
    CHANX["TELEMETRY"] = {s.upper(): s in wanted for s in ("logs", "traces", "metrics")}


def _log_stream() -> TextIO:
    path = os.environ.get("BENCH_LOG_FILE")
    if not path:
        return sys.stdout
    # Line-buffered like a container's stdout: every line is written at once.
    return open(path, "a", buffering=1, encoding="utf-8")


if os.environ.get("BENCH_SWITCH_INTERVAL"):
    sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))

LOG_STREAM = _log_stream()
LOGGING = logging_config(json=True, level=LOG_LEVEL)
LOGGING["handlers"]["chanx"]["stream"] = LOG_STREAM
configure_logging(json=True, level=LOG_LEVEL, stream=LOG_STREAM)
