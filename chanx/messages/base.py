"""Base classes for every message and channel event.

Each concrete subclass names its type with a ``Literal``: ``action`` for
messages, ``handler`` for channel events. Consumers build discriminated unions
from those literals, so a non-literal type is rejected when the subclass is
defined rather than when the first frame arrives.
"""

from __future__ import annotations

import sys
import typing
from typing import Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel

__all__ = ["BaseChannelEvent", "BaseGroupMessage", "BaseMessage", "literal_values"]


def literal_values(model: type[BaseModel], field: str) -> tuple[Any, ...]:
    """Return the values of ``model``'s ``Literal`` field, or raise ``TypeError``.

    Works for models declared under ``from __future__ import annotations``.
    """
    info = model.model_fields.get(field)
    annotation = info.annotation if info is not None else None
    if isinstance(annotation, (str, typing.ForwardRef)):
        annotation = _evaluate(model, annotation)
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    raise TypeError(
        f"{model.__qualname__}.{field} must be annotated with a Literal, "
        f'got {annotation!r}; hint: {field}: Literal["my_{field}"] = "my_{field}"'
    )


def _evaluate(model: type[BaseModel], annotation: str | typing.ForwardRef) -> Any:
    text = annotation if isinstance(annotation, str) else annotation.__forward_arg__
    namespace = dict(vars(sys.modules[model.__module__]))
    namespace.setdefault("Literal", Literal)
    try:
        # What typing.get_type_hints does: the text is an annotation from user code.
        return eval(text, namespace)
    except Exception:
        return annotation


class _TypedModel(BaseModel):
    """Checks at class definition that the discriminator field is a Literal."""

    _discriminator: ClassVar[str]
    # Classes that only add shared fields and are never sent on their own.
    _abstract: ClassVar[bool] = True

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("_abstract", False):
            return
        literal_values(cls, cls._discriminator)


class BaseMessage(_TypedModel):
    """A WebSocket message, sent by the client or by the server.

    Attributes:
        action: The message type: a ``Literal`` in every subclass.
        payload: The message body; subclasses narrow its type.

    Example:
        >>> class ChatMessage(BaseMessage):
        ...     action: Literal["chat"] = "chat"
        ...     payload: str
    """

    _discriminator: ClassVar[str] = "action"
    _abstract: ClassVar[bool] = True

    action: Any
    payload: Any = None


class BaseGroupMessage(BaseMessage):
    """A message broadcast to channel groups.

    ``is_mine`` and ``is_current`` are filled in per recipient: the message
    comes from the same authenticated user, and from the very same connection.
    """

    _abstract: ClassVar[bool] = True

    is_mine: bool = False
    is_current: bool = False


class BaseChannelEvent(_TypedModel):
    """A typed event sent through the channel layer to consumers.

    Attributes:
        handler: The event type: a ``Literal`` in every subclass.
        payload: The event body; subclasses narrow its type.
    """

    _discriminator: ClassVar[str] = "handler"
    _abstract: ClassVar[bool] = True

    handler: Any
    payload: Any = None
