"""chanx.telemetry.otlp_transport: OTLP posts without requests, over real HTTP.

The collector is a real HTTP/1.1 server on loopback that keeps connections
open (as the OpenTelemetry Collector does) and counts them.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as official_encode_spans,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.trace.export import SpanExportResult

from chanx.telemetry.otlp_exporter import FastOTLPSpanExporter
from chanx.telemetry.otlp_transport import PlainHTTPTransport, plain_http_applies
from tests.telemetry.test_otlp_exporter import chanx_spans
from tests.telemetry.test_sdk import closed_port


class KeepAliveCollector:
    """An HTTP/1.1 OTLP endpoint: keeps connections, counts them, and answers
    each request with the next of ``replies`` (status, headers), then 200."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.connections = 0
        self.replies: list[tuple[int, dict[str, str]]] = []
        #: Close each connection after its next answer, without saying so.
        self.drop_after_answer = False
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                collector.connections += 1
                super().setup()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.bodies.append(body)
                status, headers = (
                    collector.replies.pop(0) if collector.replies else (200, {})
                )
                self.send_response(status)
                for name, value in {"Content-Length": "0", **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                if collector.drop_after_answer:
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def request(self, index: int) -> ExportTraceServiceRequest:
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(
            self.bodies[index]
        )
        return request

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[KeepAliveCollector]:
    collector = KeepAliveCollector()
    yield collector
    collector.close()


def test_batches_go_over_one_kept_connection(collector: KeepAliveCollector) -> None:
    exporter = FastOTLPSpanExporter(endpoint=collector.url)
    assert exporter.plain_http
    batches = [chanx_spans(count) for count in (1, 2, 3)]
    for batch in batches:
        assert exporter.export(batch) is SpanExportResult.SUCCESS
    assert [collector.request(i) for i in range(3)] == [
        official_encode_spans(batch) for batch in batches
    ]
    assert collector.connections == 1


def test_a_connection_the_collector_dropped_is_reopened(
    collector: KeepAliveCollector,
) -> None:
    # A collector's idle timeout closes a kept connection between batches:
    # the next post fails on it and is retried at once on a new one.
    collector.drop_after_answer = True
    exporter = FastOTLPSpanExporter(endpoint=collector.url, timeout=5)
    for count in (1, 2):
        assert exporter.export(chanx_spans(count)) is SpanExportResult.SUCCESS
    assert len(collector.bodies) == 2
    assert collector.connections == 2


def test_a_retry_after_answer_is_honoured(collector: KeepAliveCollector) -> None:
    # The official client reads Retry-After through the transport's headers
    # (any case) and posts again once it has waited.
    # Without it the client would back off ~1 s, past this timeout.
    collector.replies.append((503, {"retry-after": "0"}))
    exporter = FastOTLPSpanExporter(endpoint=collector.url, timeout=0.5)
    spans = chanx_spans()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert len(collector.bodies) == 2
    assert collector.request(1) == official_encode_spans(spans)


def test_a_refused_connection_is_a_connection_error() -> None:
    transport = PlainHTTPTransport()
    result = transport.request(
        "POST", f"http://127.0.0.1:{closed_port()}/v1/traces", timeout=2, data=b"x"
    )
    assert result.status_code is None
    assert isinstance(result.error, ConnectionRefusedError)
    assert transport.is_connection_error(result.error)
    transport.close()


def test_a_reply_that_is_not_http_is_a_connection_error() -> None:
    # As requests reports it (ConnectionError), so the client retries it.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def answer_garbage() -> None:
            peer, _ = listener.accept()
            with peer:
                peer.recv(65536)
                peer.sendall(b"SSH-2.0-not-http\r\n\r\n")

        thread = threading.Thread(target=answer_garbage, daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        transport = PlainHTTPTransport()
        result = transport.request(
            "POST", f"http://127.0.0.1:{port}/v1/traces", timeout=5, data=b"x"
        )
        thread.join(5)
    assert result.status_code is None
    assert transport.is_connection_error(result.error)


def test_requests_stays_where_it_has_something_to_add(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "")
    assert plain_http_applies("http://127.0.0.1:4318/v1/traces")
    assert not plain_http_applies("https://collector:4318/v1/traces")
    # A session of the user's (it may carry auth or adapters).
    exporter = FastOTLPSpanExporter(
        endpoint="http://127.0.0.1:4318/v1/traces", session=requests.Session()
    )
    assert not exporter.plain_http
    monkeypatch.setenv(
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER", "vault"
    )
    assert not plain_http_applies("http://127.0.0.1:4318/v1/traces")
    monkeypatch.delenv("OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER")
    # A proxy the environment routes the collector through...
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    assert not plain_http_applies("http://collector.internal:4318/v1/traces")
    exporter = FastOTLPSpanExporter(endpoint="http://collector.internal:4318/v1/traces")
    assert not exporter.plain_http
    # ...unless NO_PROXY exempts it.
    monkeypatch.setenv("NO_PROXY", "collector.internal")
    assert plain_http_applies("http://collector.internal:4318/v1/traces")


def test_a_netrc_login_for_the_collector_keeps_requests(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # requests sends the login it finds in a netrc file as basic auth.
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text("machine collector.internal login otel password s3cret\n")
    netrc_file.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc_file))
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not plain_http_applies("http://collector.internal:4318/v1/traces")
    assert plain_http_applies("http://127.0.0.1:4318/v1/traces")
    netrc_file.write_text("this is not a netrc file\n")
    assert plain_http_applies("http://collector.internal:4318/v1/traces")


def test_closing_ends_a_request_the_collector_never_answers() -> None:
    # Shutdown closes the transport while the export thread waits on a
    # collector that accepted the connection and went quiet: the process
    # must not wait out the export timeout.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        transport = PlainHTTPTransport()
        results: list[Any] = []

        def post() -> None:
            results.append(
                transport.request(
                    "POST", f"http://127.0.0.1:{port}/v1/traces", timeout=30, data=b"x"
                )
            )

        poster = threading.Thread(target=post, daemon=True)
        poster.start()
        peer, _ = listener.accept()
        with peer:
            peer.recv(65536)  # the request arrived; no answer comes
            closer = threading.Thread(target=transport.close, daemon=True)
            closer.start()
            closer.join(5)
            poster.join(5)
    assert not closer.is_alive()
    assert not poster.is_alive()
    [result] = results
    assert result.status_code is None
    assert transport.is_connection_error(result.error)
