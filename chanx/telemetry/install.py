"""Build the telemetry hooks from settings and install them for every consumer."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chanx.hooks import ConsumerHooks, install_hooks
from chanx.telemetry.composite import TelemetryHooks
from chanx.telemetry.config import TelemetryConfig, telemetry_config

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider
    from prometheus_client import CollectorRegistry

__all__ = ["build_hooks", "install"]


def build_hooks(
    config: TelemetryConfig | None = None,
    *,
    registry: CollectorRegistry | None = None,
    tracer_provider: TracerProvider | None = None,
) -> TelemetryHooks | None:
    """The hooks for the enabled signals, or ``None`` when telemetry is disabled.

    Args:
        config: Defaults to ``CHANX["TELEMETRY"]``.
        registry: Where metrics live (default: prometheus_client's global one).
        tracer_provider: Default: the global provider, looked up on each span,
            so an SDK configured after Django started is still used.
    """
    config = config or telemetry_config()
    if not config.enabled:
        return None
    parts: list[tuple[str, ConsumerHooks]] = []
    on_error: Any = None
    lasting: Callable[[], contextvars.Context] | None = None
    if config.traces:
        from chanx.telemetry.lasting import lasting_context
        from chanx.telemetry.tracing import TracingHooks

        parts.append(("traces", TracingHooks(config, tracer_provider)))
        lasting = lasting_context
    if config.metrics:
        from chanx.telemetry.metric_hooks import MetricsHooks
        from chanx.telemetry.metrics import get_metrics

        metrics = get_metrics(registry)
        metrics.set_build_info()
        on_error = metrics.telemetry_error
        parts.append(("metrics", MetricsHooks(metrics, config)))
    if config.logs:
        from chanx.telemetry.logs import LogContextHooks

        parts.append(("logs", LogContextHooks(config)))
    if not parts:
        return None
    return TelemetryHooks(parts, on_error, lasting)


def install(
    config: TelemetryConfig | None = None,
    *,
    registry: CollectorRegistry | None = None,
    tracer_provider: TracerProvider | None = None,
) -> TelemetryHooks | None:
    """Build the hooks (see :func:`build_hooks`) and make them every consumer's default.

    Called by the ``chanx.telemetry`` app when Django starts and again when
    ``CHANX`` changes under ``override_settings``. Returns what was installed.
    """
    hooks = build_hooks(config, registry=registry, tracer_provider=tracer_provider)
    install_hooks(hooks)
    return hooks
