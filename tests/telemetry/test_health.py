"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.test import AsyncClient, Client
from structlog.testing import capture_logs

from chanx.telemetry.health import channel_layer_ready

SECRET = "redis://:hunter2@10.0.0.3"


class HangingLayer:
    """Accepts messages but never delivers them."""

    def __init__(self, **config: Any) -> None:
        self.config = config

    async def new_channel(self, prefix: str = "specific.") -> str:
        return prefix + "hanging!1"

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        return None

    async def receive(self, channel: str) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class BrokenLayer(HangingLayer):
    """Fails like a layer whose server refuses connections."""

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        raise ConnectionRefusedError(f"cannot reach {SECRET}")


class WrongMessageLayer(HangingLayer):
    """Delivers a message that is not the one sent."""

    async def receive(self, channel: str) -> dict[str, Any]:
        return {"type": "chanx.readyz", "token": "someone-else"}


def use_layer(settings: Any, backend: type | None, timeout: float = 0.05) -> None:
    layers = {} if backend is None else {"default": {"BACKEND": path(backend)}}
    settings.CHANNEL_LAYERS = layers
    settings.CHANX = {**settings.CHANX, "TELEMETRY": {"READYZ_TIMEOUT": timeout}}


def path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


async def test_round_trip_through_in_memory_layer_is_ok() -> None:
    assert await channel_layer_ready(1.0) == (True, "ok")


@pytest.mark.parametrize(
    ("backend", "expected", "error_type"),
    [
        (HangingLayer, (False, "channel_layer_timeout"), "TimeoutError"),
        (BrokenLayer, (False, "channel_layer_error"), "ConnectionRefusedError"),
        (WrongMessageLayer, (False, "channel_layer_error"), "_TokenMismatch"),
    ],
)
async def test_failing_layer_is_not_ready_and_logged(
    settings: Any, backend: type, expected: tuple[bool, str], error_type: str
) -> None:
    use_layer(settings, backend)
    with capture_logs() as logs:
        assert await asyncio.wait_for(channel_layer_ready(0.05), 5) == expected
    [event] = [e for e in logs if e["event"] == "readyz_failed"]
    assert event["error_type"] == error_type
    assert event["reason"] == expected[1]
    assert "exc_info" not in event


async def test_no_channel_layer_is_ready(settings: Any) -> None:
    use_layer(settings, None)
    assert await channel_layer_ready(0.05) == (True, "no_channel_layer")


@pytest.mark.urls("chanx.telemetry.urls")
def test_healthz_is_ok(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.urls("chanx.telemetry.urls")
async def test_readyz_is_ok_with_a_working_layer(async_client: AsyncClient) -> None:
    response = await async_client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]
    assert (await async_client.post("/readyz")).status_code == 405


@pytest.mark.urls("chanx.telemetry.urls")
@pytest.mark.parametrize(
    ("backend", "reason"),
    [(HangingLayer, "channel_layer_timeout"), (BrokenLayer, "channel_layer_error")],
)
async def test_readyz_is_503_without_details(
    async_client: AsyncClient, settings: Any, backend: type, reason: str
) -> None:
    use_layer(settings, backend)
    response = await asyncio.wait_for(async_client.get("/readyz"), 5)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": reason}
    assert b"Traceback" not in response.content
    assert b"hunter2" not in response.content
