"""The /metrics endpoint: format, access rules, multiprocess merging, ASGI app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import Client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from chanx.telemetry.asgi import TelemetryHTTPApp
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.exposition import check_access, render_metrics
from chanx.telemetry.metrics import get_metrics

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "scrape-token-1"


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    get_metrics(registry).telemetry_error("logs")
    return registry


@pytest.fixture
def protect(settings: Any) -> Callable[..., None]:
    """``protect(METRICS_TOKEN=..., METRICS_ALLOWED_NETWORKS=...)``."""

    def apply(**telemetry: Any) -> None:
        settings.CHANX = {**settings.CHANX, "TELEMETRY": telemetry}

    return apply


def samples(body: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_render_metrics_is_the_prometheus_text_format(
    registry: CollectorRegistry,
) -> None:
    body, content_type = render_metrics(registry)
    assert content_type == CONTENT_TYPE_LATEST
    assert content_type.startswith("text/plain; version=")
    key = ("chanx_telemetry_errors_total", frozenset({("signal", "logs")}))
    assert samples(body)[key] == 1


# Access rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote_addr", "authorization", "expected"),
    [
        ("203.0.113.7", f"Bearer {TOKEN}", None),
        ("203.0.113.7", f"bearer  {TOKEN} ", None),
        ("203.0.113.7", None, 401),
        ("203.0.113.7", "Bearer wrong", 401),
        ("203.0.113.7", f"Bearer {TOKEN}x", 401),
        ("203.0.113.7", f"Basic {TOKEN}", 401),
        ("203.0.113.7", TOKEN, 401),
        ("203.0.113.7", "Bearer ünïcode", 401),
    ],
)
def test_token_is_required_when_configured(
    remote_addr: str, authorization: str | None, expected: int | None
) -> None:
    config = TelemetryConfig(metrics_token=TOKEN)
    assert check_access(remote_addr, authorization, config) == expected


@pytest.mark.parametrize(
    ("remote_addr", "expected"),
    [
        ("10.1.2.3", None),
        ("::ffff:10.1.2.3", None),
        ("fd00::5", None),
        ("203.0.113.7", 403),
        ("fe80::1", 403),
        ("not-an-address", 403),
        (None, 403),
    ],
)
def test_address_must_be_in_allowed_networks(
    remote_addr: str | None, expected: int | None
) -> None:
    config = TelemetryConfig.from_setting(
        {"METRICS_ALLOWED_NETWORKS": ["10.0.0.0/8", "fd00::/8"]}
    )
    assert check_access(remote_addr, None, config) == expected


def test_network_is_checked_before_token() -> None:
    config = TelemetryConfig.from_setting(
        {"METRICS_TOKEN": TOKEN, "METRICS_ALLOWED_NETWORKS": ["10.0.0.0/8"]}
    )
    assert check_access("203.0.113.7", f"Bearer {TOKEN}", config) == 403
    assert check_access("10.0.0.1", "Bearer wrong", config) == 401
    assert check_access("10.0.0.1", f"Bearer {TOKEN}", config) is None


def test_no_rules_allow_everyone() -> None:
    assert check_access(None, None, TelemetryConfig()) is None


# Django view ----------------------------------------------------------------------


@pytest.mark.urls("chanx.telemetry.urls")
def test_metrics_view_serves_uncached_text(client: Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    assert "no-cache" in response["Cache-Control"]
    assert b"# TYPE " in response.content
    assert client.post("/metrics").status_code == 405


@pytest.mark.urls("chanx.telemetry.urls")
def test_metrics_view_applies_token(
    client: Client, protect: Callable[..., None]
) -> None:
    protect(METRICS_TOKEN=TOKEN)
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == "Bearer"
    assert b"# TYPE" not in refused.content
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401
    allowed = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert allowed.status_code == 200


@pytest.mark.urls("chanx.telemetry.urls")
def test_metrics_view_applies_networks(
    client: Client, protect: Callable[..., None]
) -> None:
    protect(METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"])
    assert client.get("/metrics").status_code == 403  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="10.9.8.7").status_code == 200


# ASGI app -----------------------------------------------------------------------


async def fallback(scope: Any, receive: Any, send: Any) -> None:
    """A stand-in for the Django app."""
    body = json.dumps({"app": "django", "path": scope["path"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def asgi_client(app: Any, client: tuple[str, int] = ("10.0.0.2", 5000)) -> Any:
    transport = httpx.ASGITransport(app=app, client=client)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_asgi_app_serves_metrics_and_health(
    registry: CollectorRegistry,
) -> None:
    async with asgi_client(TelemetryHTTPApp(fallback, registry=registry)) as http:
        metrics = await http.get("/metrics")
        healthz = await http.get("/healthz")
        readyz = await http.get("/readyz")
        other = await http.get("/api/rooms/")
        posted = await http.post("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"] == CONTENT_TYPE_LATEST
    key = ("chanx_telemetry_errors_total", frozenset({("signal", "logs")}))
    assert samples(metrics.content)[key] == 1
    assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})
    assert (readyz.status_code, readyz.json()) == (200, {"status": "ok"})
    assert "no-cache" in readyz.headers["cache-control"]
    assert other.json() == {"app": "django", "path": "/api/rooms/"}
    # Only GET is answered here; other methods are the app's business.
    assert posted.json() == {"app": "django", "path": "/metrics"}


async def test_asgi_app_without_app_answers_404_and_custom_paths() -> None:
    app = TelemetryHTTPApp(metrics_path="/-/metrics", healthz_path="/-/live")
    async with asgi_client(app) as http:
        assert (await http.get("/-/metrics")).status_code == 200
        assert (await http.get("/-/live")).json() == {"status": "ok"}
        assert (await http.get("/metrics")).status_code == 404
        assert (await http.get("/anything")).status_code == 404


async def test_asgi_app_applies_access_rules(protect: Callable[..., None]) -> None:
    protect(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_NETWORKS=["10.0.0.0/8"])
    inside, outside = ("10.0.0.2", 5000), ("198.51.100.1", 5000)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with asgi_client(TelemetryHTTPApp(), inside) as http:
        missing = await http.get("/metrics")
        allowed = await http.get("/metrics", headers=auth)
    async with asgi_client(TelemetryHTTPApp(), outside) as http:
        foreign = await http.get("/metrics", headers=auth)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert allowed.status_code == 200
    assert foreign.status_code == 403
    assert b"# TYPE" not in missing.content + foreign.content


async def test_asgi_app_acknowledges_lifespan_without_app() -> None:
    events = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return events.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await TelemetryHTTPApp()({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


# Multiprocess ---------------------------------------------------------------------

WORKER = """
import os
import django
django.setup()
from chanx.hooks import ConnectionInfo
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.metric_hooks import MetricsHooks
from chanx.telemetry.metrics import get_metrics
hooks = MetricsHooks(get_metrics(), TelemetryConfig())
conn = ConnectionInfo("c", {consumer!r}, "/ws/x/", "/ws/x/")
hooks.connection_started(conn, {{}}).finish("accepted")
{then}
"""
EXIT = "print(os.getpid())"
RENDER = """
from chanx.telemetry.exposition import render_metrics
import sys
body, content_type = render_metrics()
sys.stdout.write(body.decode())
"""


def run_python(code: str, multiproc_dir: Path) -> str:
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "example")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_multiprocess_merges_workers_and_drops_dead_live_gauges(
    tmp_path: Path,
) -> None:
    dead_pid = int(
        run_python(WORKER.format(consumer="GoneConsumer", then=EXIT), tmp_path)
    )
    assert (tmp_path / f"gauge_livesum_{dead_pid}.db").exists()

    # A live worker (this subprocess) scrapes while the dead one's files remain.
    body = run_python(WORKER.format(consumer="LiveConsumer", then=RENDER), tmp_path)

    merged = samples(body.encode())
    live = frozenset({("consumer", "LiveConsumer")})
    gone = frozenset({("consumer", "GoneConsumer")})
    assert merged[("chanx_connections_active", live)] == 1
    assert merged.get(("chanx_connections_active", gone), 0) == 0
    # Counters survive their process: what it did still counts.
    assert merged[("chanx_connections_opened_total", gone)] == 1
    assert merged[("chanx_connections_opened_total", live)] == 1
    assert not (tmp_path / f"gauge_livesum_{dead_pid}.db").exists()
