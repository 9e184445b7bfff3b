"""An OpenTelemetry SDK setup for apps that have none, driven by ``OTEL_*`` variables.

Call :func:`setup` once, early (the ASGI module is a good place). It reads the
standard environment, as the SDK and exporters define it:

- ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``: the resource
  (a ``service_name`` argument wins over the environment).
- ``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``: the sampler, unless
  one is passed.
- ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` or ``OTEL_EXPORTER_OTLP_PROTOCOL``:
  ``http/protobuf`` (default) or ``grpc``.
- ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (used as is) or
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` (over HTTP, ``/v1/traces`` is appended),
  headers, timeouts, certificates: read by the exporter itself.
- ``OTEL_BSP_*``: the batch span processor's delay, queue and batch sizes.
  The queue is bounded (``OTEL_BSP_MAX_QUEUE_SIZE``, default 2048 spans): a
  span ended while it is full is dropped and counted in
  ``chanx_telemetry_errors_total{signal="dropped"}``, so a slow or dead
  collector costs spans, never memory or message latency.
- ``OTEL_EXPORTER_OTLP_TIMEOUT``: seconds one export may take (exporter's own).
- ``CHANX_TELEMETRY_SHUTDOWN_TIMEOUT``: seconds :func:`shutdown` (and the
  flush at exit) may spend exporting what is queued; default 5.
- ``OTEL_SDK_DISABLED=true``: :func:`setup` does nothing and returns None.

An application that configures the SDK itself (or runs under
``opentelemetry-instrument``) needs none of this: chanx spans use whatever
global tracer provider exists.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_SDK_DISABLED,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    SpanExporter,
)

from chanx.drain import on_shutdown
from chanx.telemetry.span_export import (
    DEFAULT_SHUTDOWN_TIMEOUT,
    BoundedSpanProcessor,
    FailsafeExporter,
)

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "PROTOCOLS",
    "BoundedSpanProcessor",
    "create_tracer_provider",
    "exporter_from_env",
    "setup",
    "shutdown",
]

_log = structlog.get_logger("chanx.telemetry")

#: The OTLP protocols :func:`exporter_from_env` accepts.
PROTOCOLS = ("http/protobuf", "grpc")

#: Environment variable overriding :data:`DEFAULT_SHUTDOWN_TIMEOUT`.
SHUTDOWN_TIMEOUT_ENV = "CHANX_TELEMETRY_SHUTDOWN_TIMEOUT"

_lock = threading.Lock()
_provider: TracerProvider | None = None


def shutdown_timeout_from_env() -> float:
    """``CHANX_TELEMETRY_SHUTDOWN_TIMEOUT`` in seconds (default 5).

    Raises:
        ValueError: Not a positive number.
    """
    raw = os.environ.get(SHUTDOWN_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_SHUTDOWN_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or math.isinf(value):
        raise ValueError(
            f"{SHUTDOWN_TIMEOUT_ENV}={raw!r} is not a positive number of seconds"
        )
    return value


def exporter_from_env() -> SpanExporter:
    """An OTLP span exporter for the protocol the environment names.

    ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` wins over
    ``OTEL_EXPORTER_OTLP_PROTOCOL``; the default is ``http/protobuf``. The
    exporter reads its endpoint, headers and timeout from the environment.
    Over HTTP it is :class:`~chanx.telemetry.otlp_exporter.FastOTLPSpanExporter`
    (the official exporter with a faster encoder of the same requests); gRPC
    uses the official exporter.

    Raises:
        ValueError: The protocol is not one of :data:`PROTOCOLS`.
        ImportError: The exporter package for the protocol is not installed.
    """
    protocol = (
        os.environ.get(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL)
        or os.environ.get(OTEL_EXPORTER_OTLP_PROTOCOL)
        or "http/protobuf"
    ).strip()
    # Imported here: each exporter pulls in its transport (requests, grpcio).
    if protocol == "http/protobuf":
        try:
            from chanx.telemetry.otlp_exporter import FastOTLPSpanExporter
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise _missing("opentelemetry-exporter-otlp-proto-http") from exc
        return FastOTLPSpanExporter()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise _missing("opentelemetry-exporter-otlp-proto-grpc") from exc
        return GrpcExporter()
    raise ValueError(
        f"Unsupported OTLP protocol {protocol!r} in {OTEL_EXPORTER_OTLP_TRACES_PROTOCOL}"
        f" / {OTEL_EXPORTER_OTLP_PROTOCOL}; accepted values: {', '.join(PROTOCOLS)}"
    )


def _missing(package: str) -> ImportError:
    return ImportError(f"this OTLP protocol needs the package {package}")


def create_tracer_provider(
    *,
    service_name: str | None = None,
    exporter: SpanExporter | None = None,
    on_export_failure: Callable[[], None] | None = None,
    on_span_dropped: Callable[[], None] | None = None,
    shutdown_timeout: float | None = None,
    **tracer_provider_kwargs: Any,
) -> TracerProvider:
    """An SDK tracer provider exporting in batches; not made global.

    Args:
        service_name: Overrides ``OTEL_SERVICE_NAME`` in the resource.
        exporter: Default: :func:`exporter_from_env`.
        on_export_failure: Called (without arguments) after each failed export.
        on_span_dropped: Called (without arguments) for each span dropped
            because the queue (``OTEL_BSP_MAX_QUEUE_SIZE``) was full.
        shutdown_timeout: Seconds ``provider.shutdown()`` may take; default
            ``CHANX_TELEMETRY_SHUTDOWN_TIMEOUT`` or 5.
        **tracer_provider_kwargs: Passed to the SDK ``TracerProvider``
            (``sampler``, ``resource``, ``span_limits``...). Without a
            ``sampler`` the SDK reads ``OTEL_TRACES_SAMPLER``.
    """
    resource = tracer_provider_kwargs.pop("resource", None) or Resource.create()
    if service_name:
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    # The SDK registers provider.shutdown (which flushes) at exit by default.
    provider = TracerProvider(resource=resource, **tracer_provider_kwargs)
    exporter = exporter or exporter_from_env()
    failsafe = FailsafeExporter(exporter, on_export_failure)
    if shutdown_timeout is None:
        shutdown_timeout = shutdown_timeout_from_env()
    processor = BoundedSpanProcessor(
        failsafe,
        on_drop=on_span_dropped,
        shutdown_timeout=shutdown_timeout,
        record=_span_recorder(exporter),
    )
    provider.add_span_processor(processor)
    return provider


def _span_recorder(exporter: SpanExporter) -> Callable[[ReadableSpan], object] | None:
    """chanx's OTLP/HTTP exporter encodes spans as they end: fewer objects
    wait in the queue for the garbage collector to walk (``span_records``)."""
    try:
        from chanx.telemetry.otlp_exporter import FastOTLPSpanExporter
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    if not isinstance(exporter, FastOTLPSpanExporter):
        return None
    records = exporter.span_records
    return None if records is None else records.record


def setup(
    *,
    service_name: str | None = None,
    exporter: SpanExporter | None = None,
    on_export_failure: Callable[[], None] | None = None,
    on_span_dropped: Callable[[], None] | None = None,
    shutdown_timeout: float | None = None,
    **tracer_provider_kwargs: Any,
) -> TracerProvider | None:
    """Create an SDK tracer provider (see :func:`create_tracer_provider`) and
    make it the global one.

    A failed export is logged (``span_export_failed``) and counted: by
    ``on_export_failure``, by default in
    ``chanx_telemetry_errors_total{signal="export"}``. A span dropped because
    the queue is full is counted by ``on_span_dropped``, by default in
    ``chanx_telemetry_errors_total{signal="dropped"}``. The provider is
    flushed by :func:`shutdown`, which ``python -m chanx.serve`` calls after
    draining connections, within ``shutdown_timeout`` seconds.

    Safe to call more than once: when a global provider exists already it is
    left in place (logged as ``tracer_provider_exists``) and returned if it is
    an SDK provider, else None is returned. Spans are flushed at exit; call
    :func:`shutdown` to flush earlier.

    Returns:
        The global SDK provider, or None when ``OTEL_SDK_DISABLED=true`` (then
        nothing is set up and spans stay no-ops) or another kind of provider
        is installed.
    """
    global _provider
    if os.environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true":
        _log.info("tracing_sdk_disabled")
        return None
    with _lock:
        current = trace.get_tracer_provider()
        if not isinstance(current, trace.ProxyTracerProvider):
            _log.info("tracer_provider_exists", provider=type(current).__name__)
            return current if isinstance(current, TracerProvider) else None
        provider = create_tracer_provider(
            service_name=service_name,
            exporter=exporter,
            on_export_failure=on_export_failure or _count_export_failure,
            on_span_dropped=on_span_dropped or _count_dropped_span,
            shutdown_timeout=shutdown_timeout,
            **tracer_provider_kwargs,
        )
        trace.set_tracer_provider(provider)
        _provider = provider
    on_shutdown(shutdown)
    return provider


def _count_export_failure() -> None:
    """Default for :func:`setup`: ``chanx_telemetry_errors_total{signal="export"}``
    in prometheus_client's global registry, when prometheus_client is installed."""
    try:
        from chanx.telemetry.metrics import get_metrics
    except ImportError:
        return
    get_metrics().telemetry_error("export")


def _count_dropped_span() -> None:
    """Default for :func:`setup`: ``chanx_telemetry_errors_total{signal="dropped"}``."""
    try:
        from chanx.telemetry.metrics import get_metrics
    except ImportError:
        return
    get_metrics().telemetry_error("dropped")


def shutdown(timeout: float | None = None) -> None:
    """Flush and stop the provider :func:`setup` created (no-op otherwise).

    Its spans are not lost: this is what runs at exit anyway. The global
    provider stays set (OpenTelemetry allows setting it once) but records
    nothing more.

    Args:
        timeout: Seconds the flush may take (a dead collector does not hold
            up exit longer); default: the provider's ``shutdown_timeout``.
            Spans still queued then are dropped.
    """
    global _provider
    with _lock:
        provider, _provider = _provider, None
    if provider is None:
        return
    if timeout is not None:
        for processor in _bounded_processors(provider):
            processor.shutdown_timeout = min(processor.shutdown_timeout, timeout)
    provider.shutdown()


def _bounded_processors(provider: TracerProvider) -> list[BoundedSpanProcessor]:
    # The SDK keeps its processors in a private multi-processor.
    multi = getattr(provider, "_active_span_processor", None)
    processors = getattr(multi, "_span_processors", ())
    return [p for p in processors if isinstance(p, BoundedSpanProcessor)]
