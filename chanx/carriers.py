"""Telemetry carriers on the channel layer: written once, read by every member.

A group message or channel event carries what the sender's hooks wrote (W3C
trace context, the send time) as one JSON object *text*, not a dict. The
in-memory layer deep-copies each payload once per member and keeps the copy
queued until the member reads it; CPython counts every container such a copy
holds towards its next garbage collection, and a backlog of queued copies
makes collections, full ones included, come sooner. Text is not a container,
and a member parses it only when it is new to the process: every member of
a group reads the same text.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from chanx.codec import parse_plain_json, plain_json

__all__ = ["NO_CARRIER", "carrier_of", "carrier_text"]

#: The carrier of a payload without one (read-only, shared).
NO_CARRIER: Mapping[str, str] = MappingProxyType({})

# Parsed carriers by text; group sends are few next to their deliveries.
_parsed: dict[str, Mapping[str, str]] = {}
_MAX_PARSED = 256


def carrier_text(carrier: Mapping[str, str]) -> str:
    """``carrier`` as the payload's ``meta`` text."""
    return plain_json(dict(carrier))


def carrier_of(payload: Mapping[str, Any]) -> Mapping[str, str]:
    """The read-only carrier in ``payload["meta"]``.

    Empty when there is none, or it is not a JSON object; entries whose value
    is not a string are left out (hooks write strings; anything else came
    from somewhere else).
    """
    text = payload.get("meta")
    if not isinstance(text, str):
        return NO_CARRIER
    carrier = _parsed.get(text)
    if carrier is None:
        carrier = _parse(text)
        if len(_parsed) >= _MAX_PARSED:
            _parsed.clear()
        _parsed[text] = carrier
    return carrier


def _parse(text: str) -> Mapping[str, str]:
    try:
        parsed = parse_plain_json(text)
    except (ValueError, RecursionError):
        return NO_CARRIER
    if not isinstance(parsed, dict):
        return NO_CARRIER
    return MappingProxyType({k: v for k, v in parsed.items() if isinstance(v, str)})
