"""Fan each hook call out to the enabled signals, isolating their failures.

A tracing bug must not cost the metrics of the same message, so every part is
called in its own ``try``: a failure is logged as ``telemetry_hook_failed``
with its signal and counted through ``on_error``, and the other parts go on.
Because of that, :class:`TelemetryHooks` is ``failsafe``: installing it does
not wrap it in :class:`chanx.hooks.SafeHooks` a second time.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import structlog

from chanx.hooks import (
    NOOP_OBSERVATION,
    ConnectionInfo,
    ConsumerHooks,
    NoopHooks,
    Observation,
)

__all__ = ["TelemetryHooks"]

_log = structlog.get_logger("chanx.telemetry")

ErrorCallback = Callable[[str], None]
# (signal, bound hook method) pairs, resolved once: a frame calls each hook of
# each part, and getattr per call is measurable at that rate.
_Bound = tuple[tuple[str, Callable[..., Any]], ...]
_HOOKS = (
    "connection_started",
    "connection_closed",
    "message_received",
    "message_sent",
    "publish",
    "deliver",
    "channel_layer_error",
)


def _report(signal: str, hook: str, on_error: ErrorCallback | None) -> None:
    _log.error("telemetry_hook_failed", signal=signal, hook=hook, exc_info=True)
    if on_error is not None:
        try:
            on_error(signal)
        except Exception:
            _log.error("telemetry_error_count_failed", signal=signal, exc_info=True)


def _inherits_noop(part: ConsumerHooks, hook: str) -> bool:
    """Whether ``part``'s ``hook`` is :class:`NoopHooks`' own: then it is not
    called at all (parts override only the hooks they need)."""
    noop = getattr(NoopHooks, hook)
    return getattr(type(part), hook, None) is noop and hook not in getattr(
        part, "__dict__", ()
    )


class _CompositeObservation:
    __slots__ = ("_hook", "_on_error", "_parts")

    def __init__(
        self,
        parts: list[tuple[str, Observation]],
        hook: str,
        on_error: ErrorCallback | None,
    ) -> None:
        self._parts = parts
        self._hook = hook
        self._on_error = on_error

    def finish(
        self,
        outcome: str,
        error_type: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        # Reverse order: the tracing part began first and attached its
        # context, so it detaches last.
        for signal, observation in reversed(self._parts):
            try:
                observation.finish(outcome, error_type, exc)
            except Exception:
                _report(signal, self._hook + ".finish", self._on_error)


class TelemetryHooks:
    """Calls each ``(signal, hooks)`` part in order; parts never affect each other.

    Args:
        parts: ``("traces", TracingHooks(...))``, ``("metrics", ...)``, ...
        on_error: Called with the signal name when a part raises.
        lasting_context: Makes the context a server may keep for a
            connection's life (see :func:`chanx.hooks.lasting_context`);
            a failure counts against ``"traces"``.
    """

    #: Isolates its parts' failures itself (see :func:`chanx.hooks.as_safe`).
    failsafe: ClassVar[bool] = True

    def __init__(
        self,
        parts: Sequence[tuple[str, ConsumerHooks]],
        on_error: ErrorCallback | None = None,
        lasting_context: Callable[[], contextvars.Context] | None = None,
    ) -> None:
        self.parts = list(parts)
        self.on_error = on_error
        self._lasting_context = lasting_context
        self._bound: dict[str, _Bound] = {
            hook: tuple(
                (signal, getattr(part, hook))
                for signal, part in self.parts
                if not _inherits_noop(part, hook)
            )
            for hook in _HOOKS
        }

    def _observe(self, hook: str, *args: Any) -> Observation:
        begun: list[tuple[str, Observation]] = []
        for signal, method in self._bound[hook]:
            try:
                begun.append((signal, method(*args)))
            except Exception:
                _report(signal, hook, self.on_error)
        if not begun:
            return NOOP_OBSERVATION
        return _CompositeObservation(begun, hook, self.on_error)

    def _notify(self, hook: str, *args: Any) -> None:
        for signal, method in self._bound[hook]:
            try:
                method(*args)
            except Exception:
                _report(signal, hook, self.on_error)

    def connection_started(
        self, conn: ConnectionInfo, scope: Mapping[str, Any]
    ) -> Observation:
        return self._observe("connection_started", conn, scope)

    def connection_closed(self, conn: ConnectionInfo, code: int) -> None:
        self._notify("connection_closed", conn, code)

    def message_received(
        self, conn: ConnectionInfo, action: str, size: int, carrier: Mapping[str, str]
    ) -> Observation:
        return self._observe("message_received", conn, action, size, carrier)

    def message_sent(self, conn: ConnectionInfo, action: str, size: int) -> None:
        self._notify("message_sent", conn, action, size)

    def publish(
        self,
        conn: ConnectionInfo | None,
        kind: str,
        name: str,
        groups: Sequence[str],
        carrier: dict[str, str],
    ) -> Observation:
        return self._observe("publish", conn, kind, name, groups, carrier)

    def deliver(
        self, conn: ConnectionInfo, kind: str, name: str, carrier: Mapping[str, str]
    ) -> Observation:
        return self._observe("deliver", conn, kind, name, carrier)

    def channel_layer_error(
        self, conn: ConnectionInfo | None, operation: str, exc: BaseException
    ) -> None:
        self._notify("channel_layer_error", conn, operation, exc)

    def lasting_context(self) -> contextvars.Context | None:
        if self._lasting_context is None:
            return None
        try:
            return self._lasting_context()
        except Exception:
            _report("traces", "lasting_context", self.on_error)
            return None
