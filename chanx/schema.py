"""Per-consumer-class schema: built once when the class is defined.

Holds the pydantic ``TypeAdapter`` for the incoming message union and for the
channel event union, the sets of declared actions and handlers (the only values
allowed into logs and metric labels), and the group message and model types.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from django.db.models import Model
from pydantic import Field, TypeAdapter, ValidationError

from chanx.errors import FrameError, detail, from_validation_error
from chanx.hooks import UNKNOWN
from chanx.messages.base import (
    BaseChannelEvent,
    BaseGroupMessage,
    BaseMessage,
    literal_values,
)

__all__ = ["UNKNOWN", "ConsumerSchema", "build_schema", "union_members"]


def union_members(tp: Any) -> tuple[Any, ...]:
    """Return the members of ``A | B`` / ``Union[A, B]``, or ``(tp,)``."""
    if get_origin(tp) in (Union, types.UnionType):
        return get_args(tp)
    return (tp,)


@dataclass(frozen=True)
class _Union:
    """A validated union of typed models and its discriminator values."""

    adapter: TypeAdapter[Any]
    names: frozenset[Any]
    field: str
    tagged: bool = False

    def label(self, data: Mapping[str, Any]) -> str:
        """The declared name carried by ``data``, or ``"unknown"``."""
        value = data.get(self.field)
        try:
            known = value in self.names
        except TypeError:  # an unhashable value from the wire
            return UNKNOWN
        return str(value) if known else UNKNOWN

    def validate(self, data: dict[str, Any]) -> Any:
        if self.field not in data:
            raise FrameError(
                "validation", [detail("missing", "Field required", [self.field])]
            )
        if self.label(data) == UNKNOWN:
            expected = ", ".join(sorted(repr(n) for n in self.names))
            # The message names what is allowed and never echoes the input.
            raise FrameError(
                "validation",
                [
                    detail(
                        f"unknown_{self.field}",
                        f"Expected one of: {expected}",
                        [self.field],
                    )
                ],
            )
        try:
            return self.adapter.validate_python(data)
        except ValidationError as exc:
            errors = from_validation_error(exc)
            if self.tagged:
                # A discriminated union puts the tag first in loc; drop it so a
                # client sees the same loc however many types the consumer has.
                tag = str(data[self.field])
                for error in errors:
                    if error["loc"][:1] == [tag]:
                        error["loc"] = error["loc"][1:]
            raise FrameError("validation", errors) from None


def _build_union(tp: Any, base: type[Any], field: str, where: str) -> _Union:
    members = union_members(tp)
    names: dict[Any, type[Any]] = {}
    for member in members:
        if not (isinstance(member, type) and issubclass(member, base)):
            raise TypeError(
                f"{where}: {member!r} is not a {base.__name__} subclass; "
                f"hint: list {base.__name__} subclasses joined with '|'"
            )
        for value in literal_values(member, field):
            if value in names:
                raise TypeError(
                    f"{where}: {field} {value!r} is declared by both "
                    f"{names[value].__name__} and {member.__name__}"
                )
            names[value] = member
    target: Any = tp
    if len(members) > 1:
        target = Annotated[tp, Field(discriminator=field)]
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(target)
    except Exception as exc:
        raise TypeError(
            f"{where}: cannot build a validator for {tp!r} ({exc}); hint: define "
            "every type the messages refer to before the consumer, or call "
            "Model.model_rebuild()"
        ) from exc
    return _Union(adapter, frozenset(names), field, tagged=len(members) > 1)


@dataclass(frozen=True)
class ConsumerSchema:
    """What a consumer class accepts and sends, prepared once per class."""

    incoming: _Union
    events: _Union | None
    group_message: Any
    model: type[Model] | None
    group_actions: frozenset[Any] = frozenset()

    def action_label(self, data: Mapping[str, Any]) -> str:
        """Bounded label for an incoming frame: a declared action or ``unknown``."""
        return self.incoming.label(data)

    def handler_label(self, data: Mapping[str, Any]) -> str:
        """Bounded label for an event: a declared handler or ``unknown``."""
        return self.events.label(data) if self.events else UNKNOWN

    def group_label(self, action: object) -> str:
        """Bounded label for a relayed group frame of ``action``: a declared
        group message action, or ``unknown``."""
        if isinstance(action, str) and action in self.group_actions:
            return action
        return UNKNOWN

    def validate_message(self, data: dict[str, Any]) -> BaseMessage:
        """Validate a decoded frame; raises ``FrameError`` with client-safe details."""
        message: BaseMessage = self.incoming.validate(data)
        return message

    def validate_event(self, data: dict[str, Any]) -> BaseChannelEvent:
        """Validate a received event; raises ``FrameError`` if it is not declared."""
        if self.events is None:
            raise FrameError(
                "validation", [detail("no_events", "This consumer declares no events")]
            )
        event: BaseChannelEvent = self.events.validate(data)
        return event


def _optional_class(tp: Any, base: type[Any], where: str) -> Any:
    if tp is None or tp is type(None):
        return None
    if isinstance(tp, type) and issubclass(tp, base):
        return tp
    raise TypeError(f"{where}: expected a {base.__name__} subclass or None, got {tp!r}")


def build_schema(owner: str, args: tuple[Any, ...]) -> ConsumerSchema:
    """Check a consumer's generic arguments ``[IC, Event, OG, M]`` and prepare them.

    Raises:
        TypeError: An argument is not what its position requires.
    """
    ic, event, og, model = (*args, None, None, None)[:4]
    if ic is None or ic is type(None):
        raise TypeError(f"{owner}: the incoming message type (IC) is required")
    has_events = event is not None and event is not type(None)
    group_members = () if og is None or og is type(None) else union_members(og)
    for member in group_members:
        _optional_class(member, BaseGroupMessage, f"{owner} OG")
    group_message = og if group_members else None
    return ConsumerSchema(
        incoming=_build_union(ic, BaseMessage, "action", f"{owner} IC"),
        events=(
            _build_union(event, BaseChannelEvent, "handler", f"{owner} Event")
            if has_events
            else None
        ),
        group_message=group_message,
        model=_optional_class(model, Model, f"{owner} M"),
        group_actions=frozenset(
            value
            for member in group_members
            for value in literal_values(member, "action")
        ),
    )


def is_concrete(args: tuple[Any, ...]) -> bool:
    """False while any generic argument is still a ``TypeVar``."""
    return not any(isinstance(a, typing.TypeVar) for a in args)
