"""Channel events: sent through the channel layer from views, tasks or consumers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from chanx.messages.base import BaseChannelEvent


class NotifyEvent(BaseChannelEvent):
    """A notification to relay to connected clients."""

    class Payload(BaseModel):
        """Body of a notification.

        Attributes:
            content: The text to show.
            level: Severity, e.g. ``"info"`` or ``"warning"``.
        """

        content: str
        level: str = "info"

    handler: Literal["notify"] = "notify"
    payload: Payload


RoomEvent = NotifyEvent
