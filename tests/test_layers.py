"""The redis-py 8 socket_timeout pitfall is reported once, with the fix."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from structlog.testing import capture_logs

from chanx import layers


@pytest.fixture(autouse=True)
def _fresh_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layers, "_checked", set())
    monkeypatch.setattr(layers, "_redis_major", lambda: 8)


def warnings_for(layer: Any) -> list[MutableMapping[str, Any]]:
    with capture_logs() as logs:
        layers.check_channel_layer(layer)
        layers.check_channel_layer(layer)
    return [e for e in logs if e["event"] == "redis_socket_timeout_default"]


def test_default_redis_hosts_are_warned_about_once_with_the_fix() -> None:
    [warning] = warnings_for(RedisChannelLayer(hosts=["redis://127.0.0.1:6379/0"]))
    assert warning["log_level"] == "warning"
    assert '"socket_timeout": None' in warning["hint"]


@pytest.mark.parametrize(
    "host",
    [
        {"address": "redis://127.0.0.1:6379/0", "socket_timeout": None},
        "redis://127.0.0.1:6379/0?socket_timeout=30",
    ],
)
def test_hosts_with_a_socket_timeout_are_fine(host: Any) -> None:
    assert warnings_for(RedisChannelLayer(hosts=[host])) == []


def test_redis_7_and_other_layers_are_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    assert warnings_for(InMemoryChannelLayer()) == []
    monkeypatch.setattr(layers, "_redis_major", lambda: 7)
    assert warnings_for(RedisChannelLayer(hosts=["redis://127.0.0.1:6379/0"])) == []
