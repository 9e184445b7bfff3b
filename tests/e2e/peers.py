"""Real telemetry peers for the e2e tests: an OTLP/HTTP receiver and Prometheus.

There is no OpenTelemetry Collector binary here, so the receiver is a small
HTTP server in the test process that accepts what a collector would: OTLP
``ExportTraceServiceRequest`` protobuf on ``POST /v1/traces``, decoded with
``opentelemetry-proto``. Prometheus is Debian's real binary.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.e2e.servers import HOST, free_port

__all__ = ["OtlpReceiver", "PrometheusServer", "ReceivedSpan", "wait_until"]


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, poll: float = 0.1
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as a collector received it."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    links: list[tuple[str, str]]
    status_code: int
    events: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _ReceiverHTTPServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.owner.add(request)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _ReceiverHTTPServer(ThreadingHTTPServer):
    owner: OtlpReceiver


class OtlpReceiver:
    """Accepts OTLP/HTTP protobuf trace exports on 127.0.0.1."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self._server = _ReceiverHTTPServer((HOST, free_port()), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return f"http://{HOST}:{self._server.server_address[1]}"

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, request: ExportTraceServiceRequest) -> None:
        received: list[ReceivedSpan] = []
        for resource_spans in request.resource_spans:
            resource = {
                attr.key: _value(attr.value)
                for attr in resource_spans.resource.attributes
            }
            service = str(resource.get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            service=service,
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={
                                a.key: _value(a.value) for a in span.attributes
                            },
                            links=[
                                (link.trace_id.hex(), link.span_id.hex())
                                for link in span.links
                            ],
                            status_code=span.status.code,
                            events=[event.name for event in span.events],
                        )
                    )
        with self._lock:
            self.spans.extend(received)

    def find(self, **wanted: Any) -> list[ReceivedSpan]:
        """Spans whose fields equal ``wanted`` (e.g. ``name=..., trace_id=...``)."""
        with self._lock:
            spans = list(self.spans)
        return [
            span
            for span in spans
            if all(getattr(span, key) == value for key, value in wanted.items())
        ]


class PrometheusServer:
    """Debian's ``prometheus`` scraping ``targets`` every second, on loopback."""

    def __init__(
        self,
        workdir: Path,
        targets: list[str],
        bearer_token: str | None = None,
    ) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / "prometheus.log"
        auth = (
            f"    authorization:\n      credentials: {bearer_token}\n"
            if bearer_token
            else ""
        )
        config = (
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: chanx\n"
            f"{auth}"
            "    static_configs:\n"
            f"      - targets: [{', '.join(repr(t) for t in targets)}]\n"
        )
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(config)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @contextlib.contextmanager
    def running(self) -> Iterator[PrometheusServer]:
        """Start, wait until ready, yield, stop."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                    f"--web.listen-address={HOST}:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_until(self._ready, 30, "prometheus to be ready", poll=0.2)
                yield self
            finally:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"prometheus exited: {self.log_path.read_text(errors='replace')}"
            )
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def query(self, promql: str) -> float | None:
        """The first sample of an instant query, or ``None`` if it has none."""
        reply = httpx.get(
            f"{self.url}/api/v1/query", params={"query": promql}, timeout=5
        ).json()
        assert reply["status"] == "success", reply
        result = reply["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def target_health(self) -> list[str]:
        """``up``/``down``/``unknown`` per scrape target."""
        reply = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()
        return [t["health"] for t in reply["data"]["activeTargets"]]
