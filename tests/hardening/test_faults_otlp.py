"""The OTLP collector hangs or is gone: spans are dropped and counted, the
queue stays bounded, messages keep flowing and shutdown is bounded.

The exporter is the SDK's real OTLP/HTTP exporter posting to 127.0.0.1: a
:class:`SilentCollector` that accepts and never answers, or a closed port.
Latency with a healthy, slow and dead collector is measured side by side by
``benchmarks/otlp_faults.py``; these tests only check behaviour.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider

from chanx.telemetry.sdk import create_tracer_provider, shutdown_timeout_from_env
from tests.e2e.clients import next_frame, open_ws
from tests.e2e.peers import wait_until
from tests.e2e.servers import HOST, free_port
from tests.hardening.faults_servers import (
    RedisProcess,
    SilentCollector,
    faults_env,
    launch_serve,
    metric,
)

QUEUE = 8
SHUTDOWN_TIMEOUT = 1.0
# The exporter would wait this long for a hanging collector.
EXPORT_TIMEOUT = 30
SPANS = 200


@pytest.fixture
def small_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", str(QUEUE))
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")


def provider_for(endpoint: str, drops: list[int]) -> TracerProvider:
    exporter = OTLPSpanExporter(
        endpoint=f"{endpoint}/v1/traces", timeout=EXPORT_TIMEOUT
    )
    return create_tracer_provider(
        exporter=exporter,
        on_span_dropped=lambda: drops.append(1),
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )


def returns_within(action: object, limit: float) -> bool:
    """Run ``action()`` in a thread; True if it returned within ``limit`` seconds."""
    assert callable(action)
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    thread.join(limit)
    return not thread.is_alive()


@pytest.fixture
def silent() -> Iterator[SilentCollector]:
    with SilentCollector() as collector:
        yield collector


@pytest.mark.usefixtures("small_queue")
def test_hanging_collector_spans_dropped_counted_shutdown_bounded(
    silent: SilentCollector,
) -> None:
    drops: list[int] = []
    provider = provider_for(silent.endpoint, drops)
    tracer = provider.get_tracer("faults")
    for _ in range(4):
        tracer.start_span("first").end()
    wait_until(lambda: silent.connections, 10, "the exporter to connect")
    # The worker now waits on the collector: the queue fills, then drops.
    for _ in range(SPANS):
        tracer.start_span("more").end()
    assert SPANS - QUEUE <= len(drops) <= SPANS
    assert returns_within(provider.shutdown, 3 * SHUTDOWN_TIMEOUT)


@pytest.mark.usefixtures("small_queue")
def test_unreachable_collector_shutdown_bounded() -> None:
    drops: list[int] = []
    provider = provider_for(f"http://{HOST}:{free_port()}", drops)
    tracer = provider.get_tracer("faults")
    for _ in range(SPANS):
        tracer.start_span("lost").end()
    # Refused connections are retried with backoff up to the export timeout;
    # the queue stays bounded meanwhile and shutdown does not wait for it.
    assert len(drops) >= SPANS - QUEUE - 4
    assert returns_within(provider.shutdown, 3 * SHUTDOWN_TIMEOUT)


def test_shutdown_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHANX_TELEMETRY_SHUTDOWN_TIMEOUT", raising=False)
    assert shutdown_timeout_from_env() == 5.0
    monkeypatch.setenv("CHANX_TELEMETRY_SHUTDOWN_TIMEOUT", "2.5")
    assert shutdown_timeout_from_env() == 2.5
    monkeypatch.setenv("CHANX_TELEMETRY_SHUTDOWN_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="CHANX_TELEMETRY_SHUTDOWN_TIMEOUT"):
        shutdown_timeout_from_env()


@pytest.mark.e2e
async def test_server_with_hanging_collector_serves_counts_and_exits(
    silent: SilentCollector, tmp_path: Path
) -> None:
    redis = RedisProcess(tmp_path / "redis.log")
    redis.start()
    try:
        env = {
            **faults_env(tmp_path, redis.url),
            "OTEL_SERVICE_NAME": "chanx-hanging-collector",
            "OTEL_EXPORTER_OTLP_ENDPOINT": silent.endpoint,
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_BSP_MAX_QUEUE_SIZE": "16",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "8",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_EXPORTER_OTLP_TIMEOUT": str(EXPORT_TIMEOUT),
            "CHANX_TELEMETRY_SHUTDOWN_TIMEOUT": "2",
        }
        server = launch_serve(
            "hanging-collector", env, tmp_path, "config.asgi:application", []
        )
        try:
            async with open_ws(server, "/ws/ping/") as ws:
                assert (await next_frame(ws))["payload"]["status_code"] == 200
                for _ in range(50):
                    await ws.send(json.dumps({"action": "ping"}))
                    assert (await next_frame(ws))["action"] == "pong"
            dropped = await asyncio.to_thread(
                metric, server, "chanx_telemetry_errors_total", signal="dropped"
            )
            assert dropped > 0
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            # Without the bound, the flush would wait out the 30 s export
            # timeout; 3x the 2 s shutdown timeout plus a margin is plenty.
            await asyncio.to_thread(server.process.wait, 3 * 2 + 5)
        finally:
            server.stop()
    finally:
        redis.stop()
