"""Log lines that differ only in their time and trace ids, rendered once.

A connection writes the same few lines for every frame: ``message_received``
and ``message_sent`` with the same action, bound context and context
variables; only ``timestamp`` and ``trace_id``/``span_id`` change. Once a
line repeats, its bound logger keeps it rendered in two halves around the
timestamp, and the next ones are joined from the halves, the time and the
ids: no event dict, redaction or JSON encoding per line.

The key of a line is everything else it is made of: the chain, the level,
the event, the keywords and the context variables' values, each with its
type (``1`` and ``True`` are equal keys but different JSON). Only text,
integers, booleans and None make a key: ``-0.0 == 0.0``, and a container
may hold either, so lines with other values take the full chain. A bound
logger's context takes part through the logger itself: structlog never
changes a bound context in place (``bind()`` makes a new logger).

Memory: a bound logger keeps nothing for its first few lines, then a bit
per line until one repeats, then at most :data:`MAX_LINES` rendered lines;
an idle connection (a few opening lines) keeps nothing. Lines that cannot be templated
(their own trace ids, a stack, an exception) take the full chain every time.
"""

from __future__ import annotations

import json
from typing import Any

from chanx.telemetry.log_chain import EventChain
from chanx.telemetry.rendering import json_renderer

__all__ = ["MAX_LINES", "event_dict_of", "templated_line"]

#: Rendered lines kept per bound logger (emptied when full).
MAX_LINES = 16

# Stands in for the timestamp while the halves are rendered; its JSON form
# (control characters escaped) cannot come out of any other value's.
_STAND_IN = "\x00chanx-timestamp\x00"
_RENDERED_STAND_IN = json.dumps(_STAND_IN)[1:-1]
# A logger's first lines are only counted: an idle connection logs its
# opening lines and no more, and keeps nothing for them.
_QUIET_LINES = 4
# After those, a line is templated on its second sighting: one bit per key
# hash records the first, above the count's bits. Forgotten when half the
# bits are set, so lines that never repeat (a size in the keywords) rarely
# look repeated.
_FIRST_BIT = _QUIET_LINES.bit_length()
_SEEN_BITS = 64
_SEEN_LIMIT = 32
# Types whose equal values render the same JSON (with the type in the key:
# True == 1). Not float (-0.0 == 0.0) nor containers (they may hold one);
# Ellipsis marks an unbound context variable.
_KEYABLE = frozenset({str, int, bool, type(None), type(Ellipsis)})
# In the cache for a key that cannot be templated: use the full chain.
_FULL_CHAIN = ("", "")

_Halves = tuple[str, str]


def event_dict_of(bound: Any, event: Any, kw: dict[str, Any]) -> dict[str, Any]:
    """What structlog's ``_process_event`` builds for ``bound.info(event, **kw)``:
    the bound context, the keywords, then ``event`` (unless None)."""
    event_dict: dict[str, Any] = bound._context.copy()
    event_dict.update(kw)
    if event is not None:
        event_dict["event"] = event
    return event_dict


def templated_line(
    bound: Any, chain: EventChain, method_name: str, event: Any, kw: dict[str, Any]
) -> str | None:
    """The JSON line ``bound.<method_name>(event, **kw)`` writes, from its
    halves; None when the full chain must render it (see the module).

    Args:
        bound: A bound logger of :func:`chanx.telemetry.line_logger.line_logger_class`
            (it keeps the halves).
        chain: Its first processor (the second is ``json_renderer``).
    """
    context = chain.context_values()
    if context is None or event.__class__ not in _KEYABLE:
        return None
    # The context variables' values, then the keywords' (their names are in
    # the key on their own), each with its type.
    values = (*context, *kw.values())
    types = tuple(map(type, values))
    if not _KEYABLE.issuperset(types):
        return None
    key = (chain, method_name, event, event.__class__, tuple(kw), values, types)
    lines: dict[Any, _Halves] | None = bound._chanx_lines
    halves = lines.get(key) if lines is not None else None
    if halves is None:
        halves = _learn(bound, key, chain, method_name, event, kw)
    if halves is None or halves is _FULL_CHAIN:
        return None
    return f"{halves[0]}{chain.now()}{halves[1]}{chain.trace_fields()}}}"


def _learn(
    bound: Any,
    key: tuple[Any, ...],
    chain: EventChain,
    method_name: str,
    event: Any,
    kw: dict[str, Any],
) -> _Halves | None:
    """The halves of a line seen before (None on its first sighting)."""
    seen: int = bound._chanx_seen
    if seen < _QUIET_LINES:
        # Only counted: small integers take no memory.
        bound._chanx_seen = seen + 1
        return None
    bit = 1 << (_FIRST_BIT + hash(key) % _SEEN_BITS)
    if not seen & bit:
        forget = seen.bit_count() >= _SEEN_LIMIT
        bound._chanx_seen = _QUIET_LINES if forget else seen | bit
        return None
    halves = _render_halves(bound, chain, method_name, event, kw)
    lines: dict[Any, _Halves] | None = bound._chanx_lines
    if lines is None or len(lines) >= MAX_LINES:
        lines = bound._chanx_lines = {}
    lines[key] = halves
    return halves


def _render_halves(
    bound: Any, chain: EventChain, method_name: str, event: Any, kw: dict[str, Any]
) -> _Halves:
    # What the bound logger's full path renders, with the stand-in for time.
    event_dict = event_dict_of(bound, event, kw)
    logger = bound._logger
    rendered = chain.template(logger, method_name, event_dict, _STAND_IN)
    if rendered is None:
        return _FULL_CHAIN
    line = json_renderer(logger, method_name, rendered)
    head, found, tail = line.partition(_RENDERED_STAND_IN)
    # The trace ids go last, where the chain would have put them.
    if not found or not tail.endswith("}") or _RENDERED_STAND_IN in tail:
        return _FULL_CHAIN
    return head, tail[:-1]
