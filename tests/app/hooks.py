"""Telemetry hooks for tests: one that records every call, one that always raises."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chanx.hooks import ConnectionInfo, Observation

#: What a recording publish hook writes into the carrier.
TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


class RecordingObservation:
    def __init__(self, hooks: RecordingHooks, step: str, label: str | None) -> None:
        self.hooks = hooks
        self.step = step
        self.label = label

    def finish(
        self,
        outcome: str,
        error_type: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        self.hooks.finished.append((self.step, self.label, outcome, error_type, exc))


class RecordingHooks:
    """Records each call; ``publish`` writes :data:`TRACE` into the carrier."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.finished: list[tuple[str, str | None, str, str | None, Any]] = []
        self.connections: list[ConnectionInfo] = []

    def clear(self) -> None:
        self.calls.clear()
        self.finished.clear()
        self.connections.clear()

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == name]

    def connection_started(
        self, conn: ConnectionInfo, scope: Mapping[str, Any]
    ) -> Observation:
        self.connections.append(conn)
        self.calls.append(("connection_started", conn.consumer, conn.route))
        return RecordingObservation(self, "connection", None)

    def connection_closed(self, conn: ConnectionInfo, code: int) -> None:
        self.calls.append(("connection_closed", conn.connection_id, code))

    def message_received(
        self, conn: ConnectionInfo, action: str, size: int, carrier: Mapping[str, str]
    ) -> Observation:
        self.calls.append(("message_received", action, size))
        return RecordingObservation(self, "message", action)

    def message_sent(self, conn: ConnectionInfo, action: str, size: int) -> None:
        self.calls.append(("message_sent", conn.connection_id, action))

    def publish(
        self,
        conn: ConnectionInfo | None,
        kind: str,
        name: str,
        groups: Sequence[str],
        carrier: dict[str, str],
    ) -> Observation:
        carrier.update(TRACE)
        sender = None if conn is None else conn.connection_id
        self.calls.append(("publish", sender, kind, name, list(groups)))
        return RecordingObservation(self, "publish", name)

    def deliver(
        self, conn: ConnectionInfo, kind: str, name: str, carrier: Mapping[str, str]
    ) -> Observation:
        self.calls.append(("deliver", conn.connection_id, kind, name, dict(carrier)))
        return RecordingObservation(self, "deliver", name)

    def channel_layer_error(
        self, conn: ConnectionInfo | None, operation: str, exc: BaseException
    ) -> None:
        self.calls.append(("channel_layer_error", operation, type(exc).__name__))


class _RaisingObservation:
    def finish(
        self,
        outcome: str,
        error_type: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        raise RuntimeError("finish failed")


class RaisingHooks:
    """Every hook raises; with ``in_finish`` only the observations' ``finish`` does."""

    def __init__(self, in_finish: bool = False) -> None:
        self.in_finish = in_finish

    def _fail(self) -> Observation:
        if self.in_finish:
            return _RaisingObservation()
        raise RuntimeError("hook failed")

    def connection_started(
        self, conn: ConnectionInfo, scope: Mapping[str, Any]
    ) -> Observation:
        return self._fail()

    def connection_closed(self, conn: ConnectionInfo, code: int) -> None:
        raise RuntimeError("hook failed")

    def message_received(
        self, conn: ConnectionInfo, action: str, size: int, carrier: Mapping[str, str]
    ) -> Observation:
        return self._fail()

    def message_sent(self, conn: ConnectionInfo, action: str, size: int) -> None:
        raise RuntimeError("hook failed")

    def publish(
        self,
        conn: ConnectionInfo | None,
        kind: str,
        name: str,
        groups: Sequence[str],
        carrier: dict[str, str],
    ) -> Observation:
        return self._fail()

    def deliver(
        self, conn: ConnectionInfo, kind: str, name: str, carrier: Mapping[str, str]
    ) -> Observation:
        return self._fail()

    def channel_layer_error(
        self, conn: ConnectionInfo | None, operation: str, exc: BaseException
    ) -> None:
        raise RuntimeError("hook failed")
