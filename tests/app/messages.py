"""Messages and channel events shared by the test consumers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from chanx.messages.base import BaseChannelEvent, BaseGroupMessage, BaseMessage
from chanx.messages.incoming import PingMessage

# Incoming -------------------------------------------------------------------


class EchoMessage(BaseMessage):
    action: Literal["echo"] = "echo"
    payload: str


class AddPayload(BaseModel):
    a: int
    b: int


class AddMessage(BaseMessage):
    action: Literal["add"] = "add"
    payload: AddPayload


class FailMessage(BaseMessage):
    """The consumer raises while handling it."""

    action: Literal["fail"] = "fail"
    payload: None = None


class WhoAmIMessage(BaseMessage):
    """The consumer answers with what it knows about the connection."""

    action: Literal["whoami"] = "whoami"
    payload: None = None


class BroadcastPayload(BaseModel):
    text: str
    groups: list[str] | None = None
    exclude_current: bool = True


class BroadcastMessage(BaseMessage):
    """The consumer relays ``text`` to groups with ``send_group_message``."""

    action: Literal["broadcast"] = "broadcast"
    payload: BroadcastPayload


class RawBroadcastMessage(BaseMessage):
    """The consumer relays ``payload`` to its groups with ``send_to_groups``."""

    action: Literal["raw_broadcast"] = "raw_broadcast"
    payload: dict[str, Any]


class RawMessage(BaseMessage):
    """The consumer answers with ``send_json``."""

    action: Literal["raw"] = "raw"
    payload: dict[str, Any]


class JoinPayload(BaseModel):
    group_name: str


class JoinMessage(BaseMessage):
    """The consumer joins one more group at runtime."""

    action: Literal["join"] = "join"
    payload: JoinPayload


class NotePayload(BaseModel):
    note_text: str
    is_urgent: bool = False


class NoteMessage(BaseMessage):
    action: Literal["note"] = "note"
    payload: NotePayload


RoomIncoming = (
    PingMessage
    | EchoMessage
    | AddMessage
    | FailMessage
    | WhoAmIMessage
    | BroadcastMessage
    | RawBroadcastMessage
    | RawMessage
    | JoinMessage
    | NoteMessage
)

# Outgoing -------------------------------------------------------------------


class EchoReply(BaseMessage):
    action: Literal["echo_reply"] = "echo_reply"
    payload: str


class SumReply(BaseMessage):
    action: Literal["sum"] = "sum"
    payload: int


class IdentityReply(BaseMessage):
    action: Literal["identity"] = "identity"
    payload: dict[str, Any]


class NoteReply(BaseMessage):
    action: Literal["note_reply"] = "note_reply"
    payload: NotePayload


class EventReply(BaseMessage):
    action: Literal["event_received"] = "event_received"
    payload: dict[str, Any]


class ChatGroupMessage(BaseGroupMessage):
    action: Literal["chat_group"] = "chat_group"
    payload: str


# Channel events ---------------------------------------------------------------


class NotifyPayload(BaseModel):
    content: str
    level: str = "info"


class NotifyEvent(BaseChannelEvent):
    handler: Literal["notify"] = "notify"
    payload: NotifyPayload


class CountEvent(BaseChannelEvent):
    handler: Literal["count"] = "count"
    payload: int


class FailEvent(BaseChannelEvent):
    """The consumer raises while handling it."""

    handler: Literal["fail_event"] = "fail_event"
    payload: None = None


class OtherEvent(BaseChannelEvent):
    """Declared by no consumer."""

    handler: Literal["other"] = "other"
    payload: None = None


RoomEvent = NotifyEvent | CountEvent | FailEvent
