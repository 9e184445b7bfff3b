"""The processors of a structlog event, run as one: the per-line hot path.

:func:`chanx.telemetry.logs.configure_logging` gives structlog
:class:`EventChain` and a renderer instead of the nine processors it used to
chain (``merge_contextvars``, ``add_log_level``, ``add_logger_name``, the
timestamp, :func:`~chanx.telemetry.logs.add_trace_context`,
``StackInfoRenderer``, ``format_exc_info``, redaction). The event dict comes
out the same; what is saved is a call per step, a scan of every context
variable of the task (most of them not structlog's) and the formatting of
the same trace ids on every line of a span.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from chanx.telemetry.redaction import EventProcessor
from chanx.telemetry.rendering import IsoTimestamp

__all__ = ["EventChain", "TraceIds", "context_var"]

_PREFIX_LENGTH = len(structlog.contextvars.STRUCTLOG_KEY_PREFIX)
_Pairs = tuple[tuple[str, contextvars.ContextVar[Any]], ...]
_get = contextvars.ContextVar.get
# What structlog's add_log_level writes for its method aliases.
_LEVEL_NAMES = {"warn": "warning", "exception": "error"}
# Keys whose lines EventChain.template() leaves to the full chain.
_UNTEMPLATED = frozenset({"trace_id", "span_id", "stack_info", "exc_info", "_record"})


def context_var(key: str) -> contextvars.ContextVar[Any]:
    """The context variable behind ``structlog.contextvars.bind_contextvars(key=)``.

    Setting it is binding ``key``; resetting its token restores the value
    before; setting ``Ellipsis`` unbinds it, as ``unbind_contextvars`` does.
    """
    # Bound in a throwaway context, so the caller's is left as it was.
    bind = structlog.contextvars.bind_contextvars
    tokens = contextvars.Context().run(bind, **{key: Ellipsis})
    return tokens[key].var


class _ContextVars:
    """Merges structlog's context variables in, as ``merge_contextvars`` does.

    ``merge_contextvars`` walks every variable of the current context and
    picks structlog's by name; this reads only structlog's, which it keeps a
    registry of. Without that registry (another structlog), it falls back.
    """

    __slots__ = ("_registry", "_variables", "_vars")

    def __init__(self) -> None:
        registry = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
        self._registry: dict[str, contextvars.ContextVar[Any]] | None = (
            registry if isinstance(registry, dict) else None
        )
        self._vars: _Pairs = ()
        self._variables: tuple[contextvars.ContextVar[Any], ...] = ()

    def _pairs(self, registry: dict[str, contextvars.ContextVar[Any]]) -> _Pairs:
        pairs = self._vars
        # The registry only grows (a variable per key ever bound); tuple()
        # copies it without running Python code, so no thread can resize it
        # in between.
        if len(pairs) != len(registry):
            pairs = tuple(
                (name[_PREFIX_LENGTH:], var) for name, var in tuple(registry.items())
            )
            self._vars, self._variables = pairs, tuple(var for _, var in pairs)
        return pairs

    def values(self) -> tuple[Any, ...] | None:
        """Every variable's value (``Ellipsis`` when unbound), in a fixed
        order; None without the registry."""
        registry = self._registry
        if registry is None:
            return None
        if len(self._vars) != len(registry):
            self._pairs(registry)
        # structlog's variables default to Ellipsis: get() never raises.
        return tuple(map(_get, self._variables))

    def merge(self, event_dict: EventDict) -> None:
        registry = self._registry
        if registry is None:
            structlog.contextvars.merge_contextvars(None, "", event_dict)
            return
        for key, var in self._pairs(registry):
            value = var.get()
            if value is not Ellipsis and key not in event_dict:
                event_dict[key] = value


@functools.cache
def _opentelemetry() -> tuple[Callable[[], Any], Callable[[Any], Any]] | None:
    # Imported on first use: OpenTelemetry is optional for logging.
    try:
        from chanx.telemetry.current_span import current_context, span_in
    except ImportError:
        return None
    return current_context, span_in


def _ids(span_context: Any) -> tuple[str, str] | None:
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


class TraceIds:
    """Adds ``trace_id``/``span_id`` of the active span, formatted once per span.

    OpenTelemetry's context is an immutable mapping, a new one each time a
    span is made current: while the same one is current (the two lines of a
    frame), so is the same span, and its ids are kept with it.
    """

    __slots__ = ("_api", "_last")

    def __init__(self) -> None:
        # (OpenTelemetry context, its span's ids or None, the ids as the end
        # of a JSON object), replaced as one.
        self._last: tuple[Any, tuple[str, str] | None, str] = (None, None, "")
        # (current_context, span_in), once a line has imported them.
        self._api: tuple[Callable[[], Any], Callable[[Any], Any]] | None = None

    def _current(self) -> tuple[Any, tuple[str, str] | None, str]:
        api = self._api
        if api is None:
            api = self._api = _opentelemetry()
            if api is None:
                return self._last  # never set: no ids
        try:
            context = api[0]()
            last = self._last
            # The second line of a frame: the same context, so the same ids.
            if last[0] is not context:
                ids = _ids(api[1](context).get_span_context())
                last = self._last = (context, ids, _json_fields(ids))
        except Exception:  # logging must go on whatever the tracer does
            return (None, None, "")
        return last

    def add(self, event_dict: EventDict) -> None:
        """Add the ids of the active valid span to ``event_dict``, if any."""
        ids = self._current()[1]
        if ids is not None:
            event_dict.setdefault("trace_id", ids[0])
            event_dict.setdefault("span_id", ids[1])

    def json_fields(self) -> str:
        """What :meth:`add` adds, as JSON fields to end an object with
        (``,"trace_id":"…","span_id":"…"``), or ``""``."""
        return self._current()[2]


def _json_fields(ids: tuple[str, str] | None) -> str:
    # Hex digits: nothing to escape.
    return "" if ids is None else f',"trace_id":"{ids[0]}","span_id":"{ids[1]}"'


class EventChain:
    """One structlog processor doing what chanx's processor list did.

    In order: structlog's context variables (call and bound values win),
    ``level``, ``logger``, ``timestamp`` (:class:`IsoTimestamp`), the trace
    ids, ``stack`` and ``exception`` (only for lines that ask), then
    ``redact``. Its result goes to a renderer.

    Args:
        redact: The redaction processor, run last.
    """

    __slots__ = (
        "_context",
        "_redact",
        "_stack",
        "_timestamp",
        "_trace_ids",
        "context_values",
        "now",
        "trace_fields",
    )

    #: The ``timestamp`` a line written now gets.
    now: Callable[[], str]
    #: The trace ids a line written now gets, as the end of a JSON object.
    trace_fields: Callable[[], str]
    #: The values of structlog's context variables, all of them in a fixed
    #: order (None when structlog does not list them).
    context_values: Callable[[], tuple[Any, ...] | None]

    def __init__(self, redact: EventProcessor) -> None:
        self._redact = redact
        self._context = _ContextVars()
        self._timestamp = IsoTimestamp()
        self._trace_ids = TraceIds()
        # The parts' own methods, not methods forwarding to them: a templated
        # line calls all three (chanx.telemetry.line_templates).
        self.now = self._timestamp.now
        self.trace_fields = self._trace_ids.json_fields
        self.context_values = self._context.values
        # The stack starts at the caller's frame, not at this module's or
        # at the bound logger's (chanx.telemetry.line_logger).
        self._stack = structlog.processors.StackInfoRenderer(
            additional_ignores=[__name__, "chanx.telemetry.line_logger"]
        )

    def __call__(
        self, logger: WrappedLogger, method_name: str, event_dict: EventDict
    ) -> EventDict:
        self._add_fields(logger, method_name, event_dict, self._timestamp.now())
        self._trace_ids.add(event_dict)
        return self._finish(logger, method_name, event_dict)

    def template(
        self,
        logger: WrappedLogger,
        method_name: str,
        event_dict: EventDict,
        timestamp: str,
    ) -> EventDict | None:
        """What calling the chain returns, with ``timestamp`` for the time
        and without trace ids (:meth:`trace_fields` has them).

        Returns:
            None for an event dict with trace ids of its own, a stack or an
            exception to render, or a stdlib record: they are not lines
            that differ only in time and trace ids.
        """
        self._add_fields(logger, method_name, event_dict, timestamp)
        # Checked after the context variables are merged: they may add one.
        if not _UNTEMPLATED.isdisjoint(event_dict):
            return None
        return self._redact(logger, method_name, event_dict)

    def _add_fields(
        self,
        logger: WrappedLogger,
        method_name: str,
        event_dict: EventDict,
        timestamp: str,
    ) -> None:
        self._context.merge(event_dict)
        event_dict["level"] = _LEVEL_NAMES.get(method_name, method_name)
        record = event_dict.get("_record")
        event_dict["logger"] = logger.name if record is None else record.name
        event_dict["timestamp"] = timestamp

    def _finish(
        self, logger: WrappedLogger, method_name: str, event_dict: EventDict
    ) -> EventDict:
        if "stack_info" in event_dict:
            event_dict = self._stack(logger, method_name, event_dict)
        if "exc_info" in event_dict:
            event_dict = structlog.processors.format_exc_info(
                logger, method_name, event_dict
            )
        return self._redact(logger, method_name, event_dict)
