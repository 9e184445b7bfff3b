"""Messages declared under postponed annotations, with ``typing`` imported as a
module and a payload type defined after the message that uses it."""

from __future__ import annotations

import typing as t

from pydantic import BaseModel

from chanx.messages.base import BaseChannelEvent, BaseMessage


class FutureShout(BaseMessage):
    action: t.Literal["shout"] = "shout"
    payload: ShoutPayload


class FutureWhisper(BaseMessage):
    action: t.Literal["whisper"] = "whisper"
    payload: str


class ShoutPayload(BaseModel):
    text: str
    times: int = 1


class FutureLoud(BaseMessage):
    action: t.Literal["loud"] = "loud"
    payload: str


class FutureTick(BaseChannelEvent):
    handler: t.Literal["tick"] = "tick"
    payload: int


FutureShout.model_rebuild()
FutureIncoming = FutureShout | FutureWhisper
