"""The one seam between the consumer core and telemetry.

The core calls a :class:`ConsumerHooks` at each step a connection, frame or
event goes through; telemetry (``chanx.telemetry``) implements it. The default
does nothing and costs a method call. An installed implementation is always
wrapped in :class:`SafeHooks`, so a hook that raises is logged and skipped and
never reaches the consumer.

Labels passed to hooks are bounded: actions and handlers come from the
consumer's declared unions or are ``"unknown"``; outcomes and error types are
small fixed sets.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

__all__ = [
    "NOOP_HOOKS",
    "NOOP_OBSERVATION",
    "UNKNOWN",
    "ConnectionInfo",
    "ConsumerHooks",
    "NoopHooks",
    "Observation",
    "SafeHooks",
    "get_hooks",
    "install_hooks",
    "lasting_context",
]

_log = structlog.get_logger("chanx.hooks")

#: The label for anything not declared (an action, handler or route).
UNKNOWN = "unknown"


@dataclass(slots=True)
class ConnectionInfo:
    """What hooks know about one connection; updated as the handshake goes on.

    Attributes:
        connection_id: Random id, unique per connection (for logs and traces).
        consumer: The consumer class name.
        path: The requested path (may hold ids: not for metric labels).
        route: The path with URL kwargs replaced by ``<name>`` (bounded).
        user_id: The authenticated user's pk as text, once known.
        status_code: The authentication status, once known.
        opened_at: ``time.monotonic()`` when the handshake began.
        state: Scratch space for hook implementations (each uses its own keys),
            so they need no per-connection registry that could leak.
    """

    connection_id: str
    consumer: str
    path: str
    route: str
    user_id: str | None = None
    status_code: int | None = None
    opened_at: float = field(default_factory=time.monotonic)
    state: dict[str, Any] = field(default_factory=dict)


class Observation(Protocol):
    """A step in progress (a span, a timer); finished exactly once."""

    def finish(
        self,
        outcome: str,
        error_type: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        """End the step. ``outcome`` is ``"ok"``, ``"error"``, ``"rejected"``..."""


class ConsumerHooks(Protocol):
    """Called by every consumer; ``kind`` is ``"group_message"`` or ``"event"``."""

    def connection_started(
        self, conn: ConnectionInfo, scope: Mapping[str, Any]
    ) -> Observation:
        """The handshake began; finished when authentication has an outcome."""

    def connection_closed(self, conn: ConnectionInfo, code: int) -> None:
        """The socket closed with ``code``."""

    def message_received(
        self, conn: ConnectionInfo, action: str, size: int, carrier: Mapping[str, str]
    ) -> Observation:
        """A client frame of ``size`` bytes arrived; finished after handling.

        ``carrier`` holds the frame's optional ``traceparent``/``tracestate``.
        """

    def message_sent(self, conn: ConnectionInfo, action: str, size: int) -> None:
        """A frame of ``size`` bytes went to the client."""

    def publish(
        self,
        conn: ConnectionInfo | None,
        kind: str,
        name: str,
        groups: Sequence[str],
        carrier: dict[str, str],
    ) -> Observation:
        """A group message or event is being sent; may write into ``carrier``,
        which travels with the channel-layer payload to every receiver."""

    def deliver(
        self, conn: ConnectionInfo, kind: str, name: str, carrier: Mapping[str, str]
    ) -> Observation:
        """A group message or event reached this consumer with ``carrier``."""

    def channel_layer_error(
        self, conn: ConnectionInfo | None, operation: str, exc: BaseException
    ) -> None:
        """``group_add`` or ``group_discard`` failed (``group_send`` failures
        finish the ``publish`` observation instead)."""


class _NoopObservation:
    __slots__ = ()

    def finish(
        self,
        outcome: str,
        error_type: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        return None


NOOP_OBSERVATION = _NoopObservation()


class NoopHooks:
    """The default: does nothing."""

    def connection_started(
        self, conn: ConnectionInfo, scope: Mapping[str, Any]
    ) -> Observation:
        return NOOP_OBSERVATION

    def connection_closed(self, conn: ConnectionInfo, code: int) -> None:
        return None

    def message_received(
        self, conn: ConnectionInfo, action: str, size: int, carrier: Mapping[str, str]
    ) -> Observation:
        return NOOP_OBSERVATION

    def message_sent(self, conn: ConnectionInfo, action: str, size: int) -> None:
        return None

    def publish(
        self,
        conn: ConnectionInfo | None,
        kind: str,
        name: str,
        groups: Sequence[str],
        carrier: dict[str, str],
    ) -> Observation:
        return NOOP_OBSERVATION

    def deliver(
        self, conn: ConnectionInfo, kind: str, name: str, carrier: Mapping[str, str]
    ) -> Observation:
        return NOOP_OBSERVATION

    def channel_layer_error(
        self, conn: ConnectionInfo | None, operation: str, exc: BaseException
    ) -> None:
        return None


NOOP_HOOKS = NoopHooks()


def _failed(hook: str) -> None:
    _log.error("telemetry_hook_failed", hook=hook, exc_info=True)


class _SafeObservation:
    __slots__ = ("_inner", "_name")

    def __init__(self, inner: Observation, name: str) -> None:
        self._inner = inner
        self._name = name

    def finish(
        self,
        outcome: str,
        error_type: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        try:
            self._inner.finish(outcome, error_type, exc)
        except Exception:
            _failed(self._name + ".finish")


class SafeHooks:
    """Wraps hooks so that an exception in them is logged, never raised."""

    def __init__(self, inner: ConsumerHooks) -> None:
        self.inner = inner

    def _observe(self, name: str, *args: Any) -> Observation:
        try:
            return _SafeObservation(getattr(self.inner, name)(*args), name)
        except Exception:
            _failed(name)
            return NOOP_OBSERVATION

    def _notify(self, name: str, *args: Any) -> None:
        try:
            getattr(self.inner, name)(*args)
        except Exception:
            _failed(name)

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
        return lasting_context(self.inner)


def lasting_context(hooks: ConsumerHooks) -> contextvars.Context | None:
    """The context to hand the server a message it may keep for good, or None.

    What a server schedules while it handles a message keeps the context of
    that moment: uvicorn arms its keepalive timer when it accepts the
    handshake, and re-arms it from that context until the connection
    closes. Hooks may define an optional ``lasting_context()`` method
    returning a lighter copy of the current context (telemetry: the
    ``connect`` span without what it recorded); ``None`` (or no such
    method, or a failing one) means the current context.
    """
    method = getattr(hooks, "lasting_context", None)
    if method is None:
        return None
    try:
        context: contextvars.Context | None = method()
    except Exception:
        _failed("lasting_context")
        return None
    return context


_installed: ConsumerHooks = NOOP_HOOKS


def install_hooks(hooks: ConsumerHooks | None) -> None:
    """Make ``hooks`` the default for consumers created from now on.

    ``None`` restores the no-op default. Consumers may also set a ``hooks``
    class attribute, which wins over the installed default.
    """
    global _installed
    _installed = NOOP_HOOKS if hooks is None else as_safe(hooks)


def as_safe(hooks: ConsumerHooks) -> ConsumerHooks:
    """Wrap ``hooks`` failsafe unless it is the no-op default, already wrapped,
    or says it isolates its own failures with a class attribute
    ``failsafe = True`` (as the telemetry composite does)."""
    if (
        isinstance(hooks, (NoopHooks, SafeHooks))
        or getattr(hooks, "failsafe", False) is True
    ):
        return hooks
    return SafeHooks(hooks)


def get_hooks() -> ConsumerHooks:
    """The hooks installed with :func:`install_hooks` (no-op by default)."""
    return _installed
