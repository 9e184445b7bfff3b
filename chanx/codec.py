"""Frame text <-> plain dicts: JSON, the wire's action key, camelCase keys.

JSON goes through ``orjson`` (a chanx dependency; several times faster than
the standard library on every frame) wherever it gives the standard
library's result, and through ``json`` for the rest, so a frame decodes to
the same value either way:

- decoding: what ``orjson`` refuses (``NaN``, lone surrogates, nesting past
  its limit, invalid JSON) is handed to ``json``, which accepts or rejects
  it as before, and so is any text with a run of 19 digits or more (orjson
  reads an integer past 64 bits as a float, json as the exact integer);
- encoding: what ``orjson`` would write differently from
  ``json.dumps(ensure_ascii=False)`` (``str``/``int``/``dict`` subclasses,
  dates, dataclasses) or refuses (big integers, non-text keys) goes to
  ``json``. Differences left: a float with a small exponent is written
  ``1e-7`` instead of ``1e-07``, ``NaN``/``Infinity`` as ``null`` (valid
  JSON, which ``JSON.parse`` in a browser accepts), and an ``Enum`` or
  ``UUID`` inside ``send_json`` content as its value instead of an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson
from django.core.exceptions import ImproperlyConfigured
from pydantic import BaseModel

from chanx.errors import ErrorDetail, FrameError, detail
from chanx.limits import json_too_deep, too_deep_error

__all__ = [
    "TRACE_CONTEXT_KEYS",
    "Codec",
    "parse_plain_json",
    "plain_json",
    "pop_trace_context",
    "utf8_size",
]

_Transform = Callable[[Any], Any]
_MISSING: Any = object()
# Types orjson would write unlike json.dumps are handed back to it (TypeError).
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


# Integers orjson would round to a float have 19 digits or more (a digit run
# inside a string only costs the slower parser).
_LONG_DIGITS = re.compile(r"\d{19}")


def _loads(text: str) -> Any:
    if _LONG_DIGITS.search(text) is not None:
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # Let json decide: it accepts some of what orjson refuses.
        return json.loads(text)


def _dumps(data: Any) -> str:
    try:
        return orjson.dumps(data, option=_ORJSON_OPTIONS).decode("utf-8")
    except TypeError:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def plain_json(data: Any) -> str:
    """``data`` as compact JSON text, keys as given: what the default codec writes.

    Raises:
        TypeError: ``data`` holds a value JSON has no type for.
    """
    return _dumps(data)


def parse_plain_json(text: str) -> Any:
    """Parse JSON text as the codec does (exact big integers)."""
    return _loads(text)


def _humps() -> tuple[_Transform, _Transform]:
    try:
        import humps
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImproperlyConfigured(
            "CHANX['CAMELIZE'] needs pyhumps: pip install 'chanx[camel-case]'"
        ) from exc
    return humps.camelize, humps.decamelize


def utf8_size(text: str) -> int:
    """Size of ``text`` on the wire, in bytes (cheap for ASCII, the usual case)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


#: Optional top-level frame keys carrying W3C trace context from the client;
#: removed before validation, so messages with ``extra="forbid"`` accept them.
TRACE_CONTEXT_KEYS = ("traceparent", "tracestate")


def pop_trace_context(content: dict[str, Any]) -> dict[str, str]:
    """Remove the trace-context keys from ``content``; return the string ones."""
    if content.keys().isdisjoint(TRACE_CONTEXT_KEYS):
        return {}  # most frames: no loop, no pops
    carrier: dict[str, str] = {}
    for key in TRACE_CONTEXT_KEYS:
        value = content.pop(key, None)
        if isinstance(value, str):
            carrier[key] = value
    return carrier


class Codec:
    """Decodes incoming frame text and encodes outgoing messages.

    Models always name their type field ``action``; the wire may call it
    something else (``MESSAGE_ACTION_KEY``) and may use camelCase keys.

    Args:
        action_key: The key that carries the message type on the wire.
        camelize: Convert keys to camelCase on the way out and back on the way in.
        max_depth: Refuse frames nesting arrays/objects deeper than this
            (checked on the raw text, before parsing); ``None``: no limit.
    """

    __slots__ = ("_action_key", "_camelize", "_decamelize", "_max_depth", "plain")

    def __init__(
        self,
        action_key: str = "action",
        camelize: bool = False,
        max_depth: int | None = None,
    ) -> None:
        self._action_key = action_key
        self._max_depth = max_depth
        self._camelize: _Transform | None = None
        self._decamelize: _Transform | None = None
        if camelize:
            self._camelize, self._decamelize = _humps()
        #: Frames go out as :func:`plain_json` writes them (no key changes).
        self.plain = action_key == "action" and not camelize

    def decode(self, text: str) -> dict[str, Any]:
        """Parse a text frame into a dict whose type key is ``action``.

        Raises:
            FrameError: The text is not JSON or not a JSON object (kind
                ``decode``), or is nested too deeply (kind ``too_deep``).
        """
        if self._max_depth is not None and json_too_deep(text, self._max_depth):
            raise too_deep_error()
        try:
            data = _loads(text)
        except (ValueError, RecursionError):
            raise FrameError(
                "decode", [detail("json_invalid", "Invalid JSON")]
            ) from None
        if not isinstance(data, dict):
            raise FrameError(
                "decode", [detail("frame_type", "A frame must be a JSON object")]
            )
        if self._action_key == "action":
            return data if self._decamelize is None else dict(self._decamelize(data))
        # The wire key is looked up as sent (it may itself be camelCase), and a
        # top-level "action" is not the type when the wire calls it otherwise.
        action = data.pop(self._action_key, _MISSING)
        data.pop("action", None)
        if self._decamelize is not None:
            data = dict(self._decamelize(data))
        if action is not _MISSING:
            data["action"] = action
        return data

    def encode(self, data: dict[str, Any]) -> str:
        """Serialize a JSON-ready dict (its type key named ``action``) to text."""
        if self._camelize is not None:
            data = self._camelize(data)
        if self._action_key != "action" and "action" in data:
            data = {self._action_key: data["action"], **data}
            del data["action"]
        return _dumps(data)

    def encode_message(self, message: BaseModel) -> str:
        """Serialize an outgoing message model to frame text.

        The same text as :meth:`encode` of ``message.model_dump(mode="json")``;
        when no key changes apply (``action`` on the wire, no camelCase)
        pydantic writes it directly, without the dict in between.
        """
        if self.plain:
            return message.model_dump_json()
        return self.encode(message.model_dump(mode="json"))

    def wire_errors(self, errors: list[ErrorDetail]) -> list[ErrorDetail]:
        """Errors whose ``loc`` names keys as the client sends them."""
        if self._action_key == "action" and self._camelize is None:
            return errors
        return [
            {**error, "loc": [self._wire_loc(p) for p in error["loc"]]}
            for error in errors
        ]

    def _wire_loc(self, part: str | int) -> str | int:
        if part == "action":
            return self._action_key
        if isinstance(part, str) and self._camelize is not None:
            return str(self._camelize(part))
        return part
