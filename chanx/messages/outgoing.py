"""Messages that chanx itself sends to clients."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from chanx.messages.base import BaseMessage

__all__ = [
    "AuthenticationMessage",
    "AuthenticationPayload",
    "CompleteMessage",
    "ErrorMessage",
    "GroupCompleteMessage",
    "PongMessage",
]


class PongMessage(BaseMessage):
    """The answer to ``PingMessage``."""

    action: Literal["pong"] = "pong"
    payload: None = None


class ErrorMessage(BaseMessage):
    """An error report: a list of validation errors or ``{"detail": ...}``."""

    action: Literal["error"] = "error"
    payload: Any


class AuthenticationPayload(BaseModel):
    """Outcome of the handshake's authentication, in HTTP terms."""

    status_code: int
    status_text: str
    data: Any = None


class AuthenticationMessage(BaseMessage):
    """Sent once after the handshake: 200 means authenticated and in its groups."""

    action: Literal["authentication"] = "authentication"
    payload: AuthenticationPayload


class CompleteMessage(BaseMessage):
    """Sent after a message or event was handled, when ``send_completion`` is on."""

    action: Literal["complete"] = "complete"
    payload: None = None


class GroupCompleteMessage(BaseMessage):
    """Sent after a relayed group message, when ``send_completion`` is on."""

    action: Literal["group_complete"] = "group_complete"
    payload: None = None
