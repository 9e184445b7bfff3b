"""Frame text <-> plain dicts: JSON, the wire's action key, camelCase keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from chanx.errors import ErrorDetail, FrameError, detail
from chanx.limits import json_too_deep, too_deep_error

__all__ = ["TRACE_CONTEXT_KEYS", "Codec", "pop_trace_context", "utf8_size"]

_Transform = Callable[[Any], Any]
_MISSING: Any = object()


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

    __slots__ = ("_action_key", "_camelize", "_decamelize", "_max_depth")

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

    def decode(self, text: str) -> dict[str, Any]:
        """Parse a text frame into a dict whose type key is ``action``.

        Raises:
            FrameError: The text is not JSON or not a JSON object (kind
                ``decode``), or is nested too deeply (kind ``too_deep``).
        """
        if self._max_depth is not None and json_too_deep(text, self._max_depth):
            raise too_deep_error()
        try:
            data = json.loads(text)
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
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

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
