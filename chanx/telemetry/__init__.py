"""Telemetry for chanx consumers: structured logs, OpenTelemetry spans, Prometheus.

Add ``"chanx.telemetry"`` to ``INSTALLED_APPS`` and every consumer reports,
with no code of its own. Switch signals in ``CHANX["TELEMETRY"]``
(see :mod:`chanx.telemetry.config`). The core reaches this package only
through :mod:`chanx.hooks`.

Public API:
    install / build_hooks: build the hooks with an injected registry or
        tracer provider (the app does this for you with the defaults).
    setup: configure the OpenTelemetry SDK from ``OTEL_*`` variables, for
        apps that have no SDK setup of their own.
    configure_logging / logging_config: structlog and stdlib logging, JSON
        or console, with redaction and trace ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chanx.telemetry.config import TelemetryConfig
    from chanx.telemetry.install import build_hooks, install
    from chanx.telemetry.logs import configure_logging, logging_config
    from chanx.telemetry.sdk import setup

__all__ = [
    "TelemetryConfig",
    "build_hooks",
    "configure_logging",
    "install",
    "logging_config",
    "setup",
]

# Imported on first use: `import chanx.telemetry` (Django does it for the app
# registry) must not pull in the OpenTelemetry SDK or Django models.
_LAZY = {
    "TelemetryConfig": "chanx.telemetry.config",
    "build_hooks": "chanx.telemetry.install",
    "install": "chanx.telemetry.install",
    "configure_logging": "chanx.telemetry.logs",
    "logging_config": "chanx.telemetry.logs",
    "setup": "chanx.telemetry.sdk",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'chanx.telemetry' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
