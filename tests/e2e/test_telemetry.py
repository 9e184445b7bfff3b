"""Telemetry end to end: real uvicorn processes, real Redis, real OTLP, real Prometheus.

Two demo processes export spans with the SDK's OTLP/HTTP exporter (set up by
``chanx.telemetry.setup()`` from ``OTEL_*`` variables) to a receiver in this
test that decodes the protobuf; Debian's Prometheus scrapes both processes'
``/metrics`` (behind a bearer token). A third process exports to a dead
endpoint and must go on serving.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.clients import AUTH_OK, LOBBY, next_frame, open_ws, send_action
from tests.e2e.peers import OtlpReceiver, PrometheusServer, ReceivedSpan, wait_until
from tests.e2e.servers import (
    HOST,
    UvicornServer,
    free_port,
    launch,
    seeded_demo,
)

pytestmark = pytest.mark.e2e

SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP SpanKind values
STATUS_ERROR = 2
METRICS_TOKEN = "e2e-" + secrets.token_hex(8)
EXPORT_WAIT = 30.0


@dataclass
class TelemetryCluster:
    a: UvicornServer
    b: UvicornServer
    tokens: dict[str, str]
    receiver: OtlpReceiver
    workdir: Path
    env: dict[str, str]


def _telemetry_env(base: dict[str, str], service: str, endpoint: str) -> dict[str, str]:
    return {
        **base,
        "OTEL_SERVICE_NAME": service,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "always_on",
        # Export within ~0.1 s, so the test waits on spans, not on a timer.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2",
        "METRICS_TOKEN": METRICS_TOKEN,
        "CHANX_LOG_FORMAT": "json",
    }


@pytest.fixture(scope="module")
def tcluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TelemetryCluster]:
    workdir = tmp_path_factory.mktemp("e2e-telemetry")
    servers: list[UvicornServer] = []
    with seeded_demo(workdir) as (env, tokens), OtlpReceiver() as receiver:
        try:
            for name in ("a", "b"):
                server_env = _telemetry_env(
                    env, f"chanx-demo-{name}", receiver.endpoint
                )
                servers.append(launch(name, server_env, workdir))
            a, b = servers
            yield TelemetryCluster(a, b, tokens, receiver, workdir, env)
        finally:
            for server in servers:
                server.stop()


def _one(spans: list[ReceivedSpan], what: str) -> ReceivedSpan:
    assert len(spans) == 1, f"expected one {what}, got {spans}"
    return spans[0]


async def test_one_trace_spans_client_frame_redis_and_the_other_process(
    tcluster: TelemetryCluster,
) -> None:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    traceparent = f"00-{trace_id}-{parent_id}-01"
    async with (
        open_ws(tcluster.a, LOBBY, token=tcluster.tokens["alice"]) as alice_a,
        open_ws(tcluster.b, LOBBY, token=tcluster.tokens["bob"]) as bob_b,
    ):
        assert await next_frame(alice_a) == AUTH_OK
        assert await next_frame(bob_b) == AUTH_OK
        frame = {"action": "chat", "payload": {"content": "traced"}}
        await alice_a.send(json.dumps({**frame, "traceparent": traceparent}))
        relayed = await next_frame(bob_b)
        assert relayed["payload"] == {"username": "alice", "content": "traced"}

    receiver = tcluster.receiver
    # Alice is in the room too, so a exports a process span of its own: wait
    # for b's, not for the first one.
    process = wait_until(
        lambda: receiver.find(
            name="process room_message", trace_id=trace_id, service="chanx-demo-b"
        ),
        EXPORT_WAIT,
        "the process span from server b",
    )
    receive = _one(
        receiver.find(name="receive chat", trace_id=trace_id), "receive span"
    )
    send = _one(receiver.find(name="send room_{id}", trace_id=trace_id), "send span")
    deliver = _one(
        [span for span in process if span.service == "chanx-demo-b"], "process on b"
    )
    # The browser's context is the parent on a; the send is inside the receive.
    assert (receive.service, receive.kind, receive.parent_span_id) == (
        "chanx-demo-a",
        CONSUMER,
        parent_id,
    )
    assert receive.attributes["messaging.system"] == "chanx"
    assert receive.attributes["messaging.operation.type"] == "process"
    assert (send.service, send.kind, send.parent_span_id) == (
        "chanx-demo-a",
        PRODUCER,
        receive.span_id,
    )
    assert send.attributes["messaging.destination.template"] == "room_{id}"
    # Through Redis to the other process: its span continues the same trace.
    assert (deliver.kind, deliver.parent_span_id) == (CONSUMER, send.span_id)
    assert "message_sent" in deliver.events

    connects = wait_until(
        lambda: receiver.find(name="connect /ws/chat/<room>/", kind=SERVER),
        EXPORT_WAIT,
        "connect spans",
    )
    assert {span.service for span in connects} >= {"chanx-demo-a", "chanx-demo-b"}
    connect_a = [c for c in connects if c.service == "chanx-demo-a"]
    assert any((c.trace_id, c.span_id) in receive.links for c in connect_a)
    # Route templates and group templates only: no room name, no token.
    for span in receiver.find():
        text = json.dumps([span.name, span.attributes], default=str)
        assert "lobby" not in text
        assert tcluster.tokens["alice"] not in text

    # The server's JSON log line for that frame joins the trace.
    def traced_line() -> dict[str, Any] | None:
        for line in _json_lines(tcluster.a.log_path):
            if line.get("event") == "message_received" and (
                line.get("trace_id") == trace_id
            ):
                return line
        return None

    line = wait_until(traced_line, EXPORT_WAIT, "the traced log line on a")
    assert line["span_id"] == receive.span_id
    assert (line["action"], line["consumer"], line["route"]) == (
        "chat",
        "RoomConsumer",
        "/ws/chat/<room>/",
    )
    assert line["connection_id"]
    assert line["user_id"]


def _json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for text in path.read_text(errors="replace").splitlines():
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    return lines


def test_server_logs_are_json_and_never_hold_a_token(
    tcluster: TelemetryCluster,
) -> None:
    # Clients connect with ?token=...: uvicorn logs that path.
    for server in (tcluster.a, tcluster.b):
        text = server.log_path.read_text(errors="replace")
        for token in tcluster.tokens.values():
            assert token not in text
        lines = _json_lines(server.log_path)
        assert len(lines) == len(text.splitlines()), "a line is not JSON"
    assert any(
        "?token=[redacted]" in str(line.get("event"))
        for line in _json_lines(tcluster.a.log_path)
    )


def test_health_and_readiness_probes(tcluster: TelemetryCluster) -> None:
    with httpx.Client(base_url=tcluster.a.http_url, timeout=10) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
    # A process whose Redis is gone stays alive but is not ready.
    env = {**tcluster.env, "REDIS_URL": f"redis://{HOST}:{free_port()}/0"}
    server = launch("no-redis", env, tcluster.workdir)
    try:
        with httpx.Client(base_url=server.http_url, timeout=10) as http:
            assert http.get("/healthz").status_code == 200
            ready = http.get("/readyz")
    finally:
        server.stop()
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert "Traceback" not in ready.text


async def _exchange(cluster: TelemetryCluster) -> None:
    """One round of traffic: connect, chat, a bad frame, an announcement, close."""
    async with open_ws(cluster.a, LOBBY, token=cluster.tokens["alice"]) as ws:
        assert await next_frame(ws) == AUTH_OK
        await send_action(ws, "chat", {"content": "scraped"})
        assert (await next_frame(ws))["action"] == "room_message"
        await ws.send("{not json")
        assert (await next_frame(ws))["action"] == "error"
        async with httpx.AsyncClient(base_url=cluster.a.http_url, timeout=10) as http:
            reply = await http.post(
                "/api/announce/",
                json={"content": "scrape me", "level": "info"},
                headers={"Authorization": f"Token {cluster.tokens['alice']}"},
            )
            assert reply.status_code == 200, reply.text
        assert (await next_frame(ws))["action"] == "announcement"


RATE_QUERIES = [
    "sum(rate(chanx_messages_received_total[15s]))",
    "sum(rate(chanx_messages_sent_total[15s]))",
    'sum(rate(chanx_message_errors_total{error_type="decode"}[15s]))',
    "sum(rate(chanx_connections_opened_total[15s]))",
    "sum(rate(chanx_connections_closed_total[15s]))",
    "sum(rate(chanx_group_sends_total[15s]))",
    "sum(rate(chanx_group_messages_delivered_total[15s]))",
    "sum(rate(chanx_events_sent_total[15s]))",
    "sum(rate(chanx_events_received_total[15s]))",
    "sum(rate(chanx_message_handling_duration_seconds_count[15s]))",
    "sum(rate(chanx_event_delivery_lag_seconds_count[15s]))",
]


async def test_real_prometheus_scrapes_rates_while_clients_talk(
    tcluster: TelemetryCluster,
) -> None:
    targets = [f"{HOST}:{s.port}" for s in (tcluster.a, tcluster.b)]
    async with httpx.AsyncClient(timeout=5) as http:
        unauthorized = await http.get(f"{tcluster.a.http_url}/metrics")
    assert unauthorized.status_code == 401
    prometheus = PrometheusServer(tcluster.workdir, targets, METRICS_TOKEN)
    loop = asyncio.get_running_loop()
    with prometheus.running():
        missing = list(RATE_QUERIES)
        deadline = loop.time() + 90
        while missing and loop.time() < deadline:
            await _exchange(tcluster)
            values = await asyncio.gather(
                *(asyncio.to_thread(prometheus.query, q) for q in missing)
            )
            missing = [q for q, v in zip(missing, values, strict=True) if not v]
        assert not missing, f"rate() still zero or absent for {missing}"
        assert await asyncio.to_thread(prometheus.target_health) == ["up", "up"]
        build = await asyncio.to_thread(
            prometheus.query,
            'count(chanx_build_info{channel_layer="RedisChannelLayer"})',
        )
        assert build == 2


async def test_dead_collector_leaves_messaging_working_and_is_counted(
    tcluster: TelemetryCluster,
) -> None:
    dead = f"http://{HOST}:{free_port()}"
    env = _telemetry_env(tcluster.env, "chanx-demo-dead", dead)
    server = launch("dead-exporter", env, tcluster.workdir)
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}

    def export_errors() -> float:
        text = httpx.get(f"{server.http_url}/metrics", headers=headers, timeout=5).text
        for line in text.splitlines():
            if line.startswith('chanx_telemetry_errors_total{signal="export"}'):
                return float(line.split()[-1])
        return 0.0

    try:
        async with open_ws(server, "/ws/ping/") as ws:
            assert (await next_frame(ws))["payload"]["status_code"] == 200
            loop = asyncio.get_running_loop()
            deadline = loop.time() + EXPORT_WAIT
            failures = 0.0
            while not failures and loop.time() < deadline:
                await send_action(ws, "ping")
                assert await next_frame(ws) == {"action": "pong", "payload": None}
                failures = await asyncio.to_thread(export_errors)
            assert failures >= 1, "export failures were never counted"
            # Still serving after the exporter gave up on its batches.
            await send_action(ws, "ping")
            assert await next_frame(ws) == {"action": "pong", "payload": None}
    finally:
        server.stop()
    log = server.log_path.read_text(errors="replace")
    events = [_event(line) for line in log.splitlines()]
    assert "span_export_failed" in events


def _event(line: str) -> Any:
    try:
        return json.loads(line).get("event")
    except ValueError:
        return None
