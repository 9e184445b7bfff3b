"""Messages that clients send and every consumer may accept."""

from __future__ import annotations

from typing import Literal

from chanx.messages.base import BaseMessage

__all__ = ["PingMessage"]


class PingMessage(BaseMessage):
    """A liveness check; a consumer usually answers with ``PongMessage``."""

    action: Literal["ping"] = "ping"
    payload: None = None
