"""Stale DB connections are closed on a timer, not with a thread hop per frame."""

from __future__ import annotations

import pytest
from django.test import override_settings

from chanx import db
from chanx.messages.incoming import PingMessage
from chanx.testing import WebsocketCommunicator
from tests.guide.minimal import MyConsumer


@pytest.fixture
def close_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    async def counting_close() -> None:
        calls.append(1)

    monkeypatch.setattr(db, "aclose_old_connections", counting_close)
    # As if the process had not closed connections yet.
    monkeypatch.setattr(db.closer, "_last", float("-inf"))
    return calls


async def exchange_pings(count: int) -> None:
    communicator = WebsocketCommunicator(MyConsumer.as_asgi(), "/ws/")
    await communicator.connect()
    await communicator.assert_authenticated_status_ok()
    for _ in range(count):
        await communicator.send_message(PingMessage())
        assert await communicator.receive_all_json() == [
            {"action": "pong", "payload": None}
        ]
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_interval_closes_once_for_many_frames(close_calls: list[int]) -> None:
    with override_settings(CHANX={"SEND_COMPLETION": True}):
        await exchange_pings(20)
    # The connect dispatch runs it once; 20 frames within a second add none.
    assert len(close_calls) == 1


@pytest.mark.django_db(transaction=True)
async def test_zero_interval_closes_before_every_frame_like_channels(
    close_calls: list[int],
) -> None:
    settings = {"SEND_COMPLETION": True, "CLOSE_OLD_CONNECTIONS_INTERVAL": 0}
    with override_settings(CHANX=settings):
        await exchange_pings(5)
    # connect + 5 frames + disconnect
    assert len(close_calls) == 7


@pytest.mark.django_db(transaction=True)
async def test_none_never_closes_while_dispatching(close_calls: list[int]) -> None:
    settings = {"SEND_COMPLETION": True, "CLOSE_OLD_CONNECTIONS_INTERVAL": None}
    with override_settings(CHANX=settings):
        await exchange_pings(3)
    assert close_calls == []
