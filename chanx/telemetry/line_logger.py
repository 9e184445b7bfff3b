"""structlog's filtering bound logger, writing chanx's JSON lines in one call.

A bound logger's ``info()`` goes through ``_proxy_to_logger`` and
``_process_event``: a generic loop over the processors and checks of what
the last one returned. With chanx's JSON pipeline (one step, here
:class:`~chanx.telemetry.log_chain.EventChain`, then
:func:`~chanx.telemetry.rendering.json_renderer`) the result is always a
line of text, so the classes made here run the two directly for the level
methods (``debug`` to ``critical``, and ``exception``, which goes through
``error``): about a fifth of a line's cost, on every frame's path.

Anything else takes structlog's own path, decided per call: positional
arguments to interpolate, and any other processors. structlog's test
helpers (``capture_logs``) swap the processors inside the same list that
loggers already hold, so a flag kept per logger would go stale.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import structlog
from structlog.exceptions import DropEvent

from chanx.telemetry.line_templates import event_dict_of, templated_line
from chanx.telemetry.log_chain import EventChain
from chanx.telemetry.rendering import json_renderer

__all__ = ["line_logger_class"]

# The level methods a filtering logger defines, by level.
_METHODS = (
    (10, "debug"),
    (20, "info"),
    (30, "warning"),
    (40, "error"),
    (50, "critical"),
)

_Method = Callable[..., Any]


def _direct(name: str, generic: _Method) -> _Method:
    """The level method ``name``, taking structlog's ``generic`` one when it must."""

    def method(self: Any, event: str, *args: Any, **kw: Any) -> Any:
        processors = self._processors
        if args or len(processors) != 2 or processors[1] is not json_renderer:
            return generic(self, event, *args, **kw)
        chain = processors[0]
        if chain.__class__ is EventChain:
            line = templated_line(self, chain, name, event, kw)
            if line is not None:
                return getattr(self._logger, name)(line)
        event_dict = event_dict_of(self, event, kw)
        logger = self._logger
        try:
            line = json_renderer(logger, name, chain(logger, name, event_dict))
        except DropEvent:
            return None
        return getattr(logger, name)(line)

    method.__name__ = method.__qualname__ = name
    return method


@functools.cache
def line_logger_class(level: int) -> type[Any]:
    """A ``make_filtering_bound_logger(level)`` class writing chanx's lines directly.

    Args:
        level: The least level logged, as a number (``logging.INFO``).
    """
    base: type[Any] = structlog.make_filtering_bound_logger(level)
    methods: dict[str, Any] = {
        name: _direct(name, getattr(base, name))
        for number, name in _METHODS
        if number >= level
    }
    # Per bound logger, once set (chanx.telemetry.line_templates).
    methods.update(_chanx_lines=None, _chanx_seen=0)
    return type(f"ChanxLineLogger{level}", (base,), methods)
