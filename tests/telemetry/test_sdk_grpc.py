"""``setup()``'s gRPC protocol over a real gRPC connection on loopback.

There is no OpenTelemetry Collector here; a gRPC server in the test
implements the collector's ``TraceService`` from ``opentelemetry-proto`` and
records what the SDK's OTLP/gRPC exporter sends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as pb2_grpc

from chanx.telemetry.sdk import create_tracer_provider


class Collector(pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans: list[tuple[str, str]] = []
        self.received = threading.Event()

    def Export(
        self, request: pb2.ExportTraceServiceRequest, context: Any
    ) -> pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                self.spans += [(service, span.name) for span in scope_spans.spans]
        self.received.set()
        return pb2.ExportTraceServiceResponse()


@pytest.fixture
def collector() -> Iterator[tuple[Collector, int]]:
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    servicer = Collector()
    pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(grace=None)


def test_grpc_protocol_exports_over_grpc(
    collector: tuple[Collector, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    servicer, port = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    provider = create_tracer_provider(service_name="chanx-grpc-test")
    try:
        with provider.get_tracer("test").start_as_current_span("receive ping"):
            pass
        assert provider.force_flush(10_000)
        assert servicer.received.wait(10)
    finally:
        provider.shutdown()
    assert servicer.spans == [("chanx-grpc-test", "receive ping")]
