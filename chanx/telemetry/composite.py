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


class _Plan:
    """What the observations of one hook of one :class:`TelemetryHooks` share."""

    __slots__ = ("hook", "owner", "signals")

    def __init__(
        self, owner: TelemetryHooks, hook: str, signals: tuple[str, ...]
    ) -> None:
        self.owner = owner
        self.hook = hook + ".finish"
        self.signals = signals


class _Observations(list[Observation]):
    """The observations one hook call began, one per part, in part order
    (a no-op one for a part that raised).

    A list itself, with what they share in one :class:`_Plan`: a frame is
    in flight while its handler runs, and every container object it holds
    meanwhile brings the collector's next young collection closer (see
    ``benchmarks/README.md``, nineteenth round).
    """

    __slots__ = ("_plan",)
    _plan: _Plan

    def finish(
        self,
        outcome: str,
        error_type: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        # Reverse order: the tracing part began first and attached its
        # context, so it detaches last.
        index = len(self)
        while index:
            index -= 1
            try:
                self[index].finish(outcome, error_type, exc)
            except Exception:
                plan = self._plan
                _report(plan.signals[index], plan.hook, plan.owner.on_error)


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
        self._plans = {
            hook: _Plan(self, hook, tuple(signal for signal, _ in bound))
            for hook, bound in self._bound.items()
        }

    def _observe(self, hook: str, *args: Any) -> Observation:
        parts = self._bound[hook]
        if not parts:
            return NOOP_OBSERVATION
        begun = _Observations()
        for signal, method in parts:
            try:
                begun.append(method(*args))
            except Exception:
                _report(signal, hook, self.on_error)
                begun.append(NOOP_OBSERVATION)
        begun._plan = self._plans[hook]
        return begun

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
