"""chanx.telemetry.sdk: an OTLP tracing setup from the standard OTEL_* variables.

The global tracer provider can be set once per process, so the cases that
set it run in a subprocess; the rest use create_tracer_provider, which
builds the same provider without making it global.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    Sampler,
    SamplingResult,
)
from structlog.testing import capture_logs

from chanx.telemetry.otlp_exporter import FastOTLPSpanExporter
from chanx.telemetry.sdk import create_tracer_provider, exporter_from_env

ROOT = Path(__file__).resolve().parents[2]
OTEL_ENV = (
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_SDK_DISABLED",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_ENV:
        monkeypatch.delenv(name, raising=False)


class Collector:
    """An OTLP/HTTP endpoint on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes]] = []
        #: Each request's headers, names lowercased, in the order received.
        self.headers: list[dict[str, str]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.headers.append(
                    {k.lower(): v for k, v in self.headers.items()}
                )
                collector.requests.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    collector = Collector()
    yield collector
    collector.close()


def end_one_span(provider: TracerProvider, name: str = "work") -> None:
    with provider.get_tracer("test").start_as_current_span(name):
        pass


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_default_is_otlp_http_to_the_base_endpoint_plus_v1_traces(
    monkeypatch: pytest.MonkeyPatch, collector: Collector
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "chat-from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    provider = create_tracer_provider(shutdown_on_exit=False)
    try:
        end_one_span(provider, "handled")
        assert provider.force_flush()
    finally:
        provider.shutdown()
    [(path, body)] = collector.requests
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "chat-from-env"
    assert resource["deployment.environment"] == "test"
    [scope_spans] = resource_spans.scope_spans
    assert [span.name for span in scope_spans.spans] == ["handled"]


@pytest.mark.parametrize(
    ("env", "exporter_class"),
    [
        ({}, FastOTLPSpanExporter),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, FastOTLPSpanExporter),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, GrpcExporter),
        (
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            },
            GrpcExporter,
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            FastOTLPSpanExporter,
        ),
    ],
)
def test_protocol_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], exporter_class: type
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    exporter = exporter_from_env()
    try:
        assert type(exporter) is exporter_class
    finally:
        exporter.shutdown()


@pytest.mark.parametrize("protocol", ["http/json", "udp", "GRPC "])
def test_unsupported_protocol_names_the_accepted_ones(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", protocol)
    with pytest.raises(ValueError, match="http/protobuf, grpc") as info:
        create_tracer_provider(shutdown_on_exit=False)
    assert repr(protocol.strip()) in str(info.value)


def test_service_name_argument_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=chat")
    provider = create_tracer_provider(
        service_name="from-code",
        exporter=InMemorySpanExporter(),
        shutdown_on_exit=False,
    )
    try:
        assert provider.resource.attributes["service.name"] == "from-code"
        assert provider.resource.attributes["team"] == "chat"
    finally:
        provider.shutdown()


@pytest.mark.parametrize(
    ("sampler", "exported"), [(None, ["sampled?"]), ("always_off", [])]
)
def test_sampler_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, sampler: str | None, exported: list[str]
) -> None:
    if sampler is not None:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    exporter = InMemorySpanExporter()
    provider = create_tracer_provider(exporter=exporter, shutdown_on_exit=False)
    try:
        end_one_span(provider, "sampled?")
        provider.force_flush()
        assert [span.name for span in exporter.get_finished_spans()] == exported
    finally:
        provider.shutdown()


class FailingExporter(SpanExporter):
    def __init__(self, raises: bool) -> None:
        self.raises = raises

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.raises:
            raise ConnectionResetError("collector went away")
        return SpanExportResult.FAILURE


@pytest.mark.parametrize(
    ("make_exporter", "error_type"),
    [
        (lambda: FailingExporter(raises=False), "export_failure"),
        (lambda: FailingExporter(raises=True), "ConnectionResetError"),
        (
            lambda: HttpExporter(
                endpoint=f"http://127.0.0.1:{closed_port()}/v1/traces", timeout=0.5
            ),
            "export_failure",
        ),
    ],
    ids=["failure-result", "raises", "collector-down"],
)
def test_failed_export_is_counted_and_logged_never_raised(
    make_exporter: Any, error_type: str
) -> None:
    failures: list[None] = []
    provider = create_tracer_provider(
        exporter=make_exporter(),
        on_export_failure=lambda: failures.append(None),
        shutdown_on_exit=False,
    )
    try:
        end_one_span(provider)
        with capture_logs() as logs:
            provider.force_flush()
    finally:
        provider.shutdown()
    assert failures == [None]
    [entry] = [e for e in logs if e["event"] == "span_export_failed"]
    assert entry["error_type"] == error_type
    assert entry["spans"] == 1


class RecordOnly(Sampler):
    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "record-only"


@pytest.mark.parametrize(
    "sampler", [RecordOnly(), ALWAYS_ON], ids=["unsampled", "sampled"]
)
def test_only_sampled_spans_are_exported(sampler: Sampler) -> None:
    memory = InMemorySpanExporter()
    provider = create_tracer_provider(
        exporter=memory, sampler=sampler, shutdown_on_exit=False
    )
    try:
        end_one_span(provider, "recorded")
        provider.force_flush()
    finally:
        provider.shutdown()
    exported = [span.name for span in memory.get_finished_spans()]
    assert exported == ([] if sampler is not ALWAYS_ON else ["recorded"])


def test_a_failing_failure_callback_is_contained() -> None:
    def broken_callback() -> None:
        raise RuntimeError("metrics broken")

    provider = create_tracer_provider(
        exporter=FailingExporter(raises=True),
        on_export_failure=broken_callback,
        shutdown_on_exit=False,
    )
    try:
        end_one_span(provider)
        with capture_logs() as logs:
            provider.force_flush()
    finally:
        provider.shutdown()
    events = [e["event"] for e in logs]
    assert "span_export_failed" in events
    assert "export_failure_callback_failed" in events


# setup() sets the process-wide provider: each case runs in its own process.

PRELUDE = """
import json, sys
import django
django.setup()
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from structlog.testing import capture_logs
from chanx.telemetry import sdk
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.tracing import TracingHooks

class PrintingExporter(SpanExporter):
    def export(self, spans):
        for span in spans:
            print("exported", span.name, flush=True)
        return SpanExportResult.SUCCESS

def report(**values):
    print("report", json.dumps(values), flush=True)
"""


def run(script: str, **env: str) -> tuple[list[str], dict[str, Any]]:
    """Run ``script`` after :data:`PRELUDE`; its exported span names and report."""
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(script)],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in OTEL_ENV},
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'example'}",
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    exported = [line.split(" ", 1)[1] for line in lines if line.startswith("exported ")]
    reports = [line.split(" ", 1)[1] for line in lines if line.startswith("report ")]
    return exported, json.loads(reports[-1]) if reports else {}


def test_setup_installs_one_global_provider_used_by_hooks_built_before() -> None:
    exported, report = run(
        """
        hooks = TracingHooks(TelemetryConfig())  # built before any SDK exists
        with capture_logs() as logs:
            first = sdk.setup(service_name="chat", exporter=PrintingExporter())
            again = sdk.setup(exporter=PrintingExporter())
        carrier = {}
        hooks.publish(None, "event", "notify", ["room_1"], carrier).finish("ok")
        sdk.shutdown()
        report(
            same=again is first,
            is_global=trace.get_tracer_provider() is first,
            service=first.resource.attributes["service.name"],
            events=[e["event"] for e in logs],
            carrier=sorted(carrier),
        )
        """
    )
    assert exported == ["send room_{id}"]
    assert report == {
        "same": True,
        "is_global": True,
        "service": "chat",
        "events": ["tracer_provider_exists"],
        "carrier": ["traceparent"],
    }


def test_spans_are_flushed_at_exit_once() -> None:
    exported, _ = run(
        """
        provider = sdk.setup(exporter=PrintingExporter())
        with provider.get_tracer("t").start_as_current_span("before-exit"):
            pass
        # No shutdown: the SDK's exit handler flushes the batch.
        """
    )
    assert exported == ["before-exit"]


def test_explicit_shutdown_then_exit_exports_once() -> None:
    exported, _ = run(
        """
        provider = sdk.setup(exporter=PrintingExporter())
        with provider.get_tracer("t").start_as_current_span("shut-down"):
            pass
        sdk.shutdown()
        sdk.shutdown()
        """
    )
    assert exported == ["shut-down"]


def test_sdk_disabled_sets_up_nothing() -> None:
    exported, report = run(
        """
        provider = sdk.setup(exporter=PrintingExporter())
        with trace.get_tracer("t").start_as_current_span("disabled"):
            pass
        report(
            provider=provider is None,
            proxy=isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider),
        )
        """,
        OTEL_SDK_DISABLED="true",
    )
    assert exported == []
    assert report == {"provider": True, "proxy": True}
