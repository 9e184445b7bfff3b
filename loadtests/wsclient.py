"""One load-test WebSocket connection: websocket-client, cooperative under gevent.

Locust monkey-patches the standard library before this module is imported, so
``socket``, ``threading`` and ``queue`` here are gevent's: the reader
"thread" is a greenlet and blocking calls yield to the other users.

Every exchange is reported through a :data:`Recorder` (the locustfile turns
it into a locust request event): the handshake with its authentication
frame, ping round trips, a chat line's own echo, other senders' messages,
announcements, and, when the connection finishes, lost and duplicated
messages (see :mod:`loadtests.ledger`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import websocket

from loadtests.gates import DUPLICATE_TYPE, LOST_TYPE
from loadtests.ledger import (
    Inbox,
    SentLedger,
    count_by_kind,
    decode_body,
    encode_body,
)

__all__ = ["ExchangeError", "Recorder", "SessionConfig", "WsSession"]

#: ``(request type, name, response time in ms, response length, error or None)``.
Recorder = Callable[[str, str, float, int, "Exception | None"], None]

WS = "WS"
logger = logging.getLogger("loadtests")
_DRAIN_POLL = 0.1


class ExchangeError(Exception):
    """An exchange failed; it has already been recorded as a locust failure."""


@dataclass(frozen=True)
class SessionConfig:
    """Where and how to connect.

    Attributes:
        url: Full ``ws://`` URL, query string included.
        origin: ``Origin`` header (the demo validates it against ALLOWED_HOSTS).
        token: DRF token sent as ``Authorization: Token <key>``, if any.
        timeout: Seconds to wait for a handshake, an answer or a socket write.
    """

    url: str
    origin: str
    token: str | None = None
    timeout: float = 10.0


class WsSession:
    """A connected, authenticated WebSocket with a background reader."""

    def __init__(
        self,
        config: SessionConfig,
        record: Recorder,
        me: str,
        ledger: SentLedger,
        streams: dict[str, str] | None = None,
    ) -> None:
        """Prepare a session; :meth:`open` connects.

        Args:
            config: Where and how to connect.
            record: Receives every exchange.
            me: This connection's sender id (unique per connection).
            ledger: Process-wide record of sent messages.
            streams: Ledger streams (room names, ``announcements``) this
                connection receives -> their kind; ``None`` for no accounting.
        """
        self.config = config
        self.record = record
        self.me = me
        self.ledger = ledger
        self.streams = streams
        self.inbox: Inbox | None = None
        self._ws: websocket.WebSocket | None = None
        self._reader: threading.Thread | None = None
        self._closing = False
        self._died_at: float | None = None
        self._seq = 0
        self._pongs: queue.Queue[float] = queue.Queue()
        self._echoes: queue.Queue[int] = queue.Queue()

    def open(self) -> None:
        """Connect, read the authentication frame, record ``connect+auth``.

        Raises:
            ExchangeError: Refused, timed out or not authenticated.
        """
        started = time.perf_counter()
        header = (
            [f"Authorization: Token {self.config.token}"] if self.config.token else []
        )
        try:
            ws = websocket.create_connection(
                self.config.url,
                timeout=self.config.timeout,
                origin=self.config.origin,
                header=header,
            )
        except Exception as exc:
            self._fail(WS, "connect+auth", started, exc)
        self._ws = ws
        try:
            frame = json.loads(ws.recv())
            status = frame.get("payload", {}).get("status_code")
            if frame.get("action") != "authentication" or status != 200:
                raise ConnectionError(f"authentication failed: {frame}")
        except Exception as exc:
            _shutdown(ws)
            self._ws = None
            self._fail(WS, "connect+auth", started, exc)
        self._done(WS, "connect+auth", started)
        if self.streams is not None:
            self.inbox = Inbox(self.me, self.streams, time.monotonic())

    def start_reader(self) -> None:
        """Read frames in the background until :meth:`close`."""
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def close(self, drain_seconds: float = 0.0, not_before: float = 0.0) -> bool:
        """Wait for in-flight messages, report losses, close the socket.

        Returns:
            Whether the server answered the close handshake in time.

        Args:
            drain_seconds: How long to wait for messages still on their way.
            not_before: Stay connected until this monotonic time (bounded by
                ``drain_seconds``), so that connections which stop together
                also close together, after the traffic settled.
        """
        deadline = time.monotonic() + drain_seconds
        self._report_losses(deadline)
        while time.monotonic() < min(not_before, deadline):
            time.sleep(_DRAIN_POLL)
        self._closing = True
        ws, self._ws = self._ws, None
        if ws is None:
            return False
        if self._reader is None:
            return _close_handshake(ws, self.config.timeout)
        # The reader owns the socket's read side: ask the server to close and
        # let the reader see its close frame, instead of reading here too.
        with contextlib.suppress(Exception):
            ws.send_close()
        self._reader.join(self.config.timeout)
        _shutdown(ws)
        return not self._reader.is_alive()

    def ping(self) -> None:
        """One ``ping`` -> ``pong`` round trip, recorded as ``ping``."""
        started = time.perf_counter()
        self._clear(self._pongs)
        self._send({"action": "ping"}, "ping", started)
        try:
            self._pongs.get(timeout=self.config.timeout)
        except queue.Empty:
            self._fail(WS, "ping", started, TimeoutError("no pong"))
        self._done(WS, "ping", started)

    def chat(self, stream: str, kind: str) -> None:
        """Send a numbered chat line to the room ``stream``; wait for its echo.

        Recorded as ``<kind> echo``; the other members record ``<kind> fanout``.
        """
        self._seq += 1
        seq = self._seq
        content = encode_body(self.me, seq, kind)
        started, begun = time.perf_counter(), time.monotonic()
        frame = {"action": "chat", "payload": {"content": content}}
        self._send(frame, f"{kind} echo", started)
        self.ledger.record(self.me, stream, seq, begun)
        deadline = time.monotonic() + self.config.timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                if self._echoes.get(timeout=remaining) == seq:
                    self._done(WS, f"{kind} echo", started)
                    return
            except queue.Empty:
                break
        self._fail(WS, f"{kind} echo", started, TimeoutError(f"no echo of {seq}"))

    @property
    def alive(self) -> bool:
        """Open and not lost."""
        return self._ws is not None and self._died_at is None

    def _send(self, frame: dict[str, Any], name: str, started: float) -> None:
        if not self.alive:
            self._fail(WS, name, started, ConnectionError("not connected"))
        assert self._ws is not None
        try:
            self._ws.send(json.dumps(frame))
        except Exception as exc:
            self._died_at = time.monotonic()
            self._fail(WS, name, started, exc)

    def _read_loop(self) -> None:
        # Ends when the socket closes; the socket timeout only wakes the loop.
        while not self._closing and self._ws is not None:
            ws = self._ws
            try:
                text = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception as exc:
                if not self._closing:
                    self._died_at = time.monotonic()
                    self.record(WS, "connection lost", 0.0, 0, exc)
                return
            if text == "" and self._closing:
                return
            if isinstance(text, str) and text:
                self._dispatch(text)

    def _dispatch(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError as exc:
            self.record(WS, "bad frame", 0.0, len(text), exc)
            return
        action = frame.get("action") if isinstance(frame, dict) else None
        if action == "pong":
            self._pongs.put(time.perf_counter())
        elif action in ("room_message", "announcement"):
            self._track(frame.get("payload") or {}, len(text))
        elif action == "error":
            self.record(WS, "error frame", 0.0, len(text), RuntimeError(text[:200]))

    def _track(self, payload: dict[str, Any], length: int) -> None:
        body = decode_body(payload.get("content"))
        if body is None or self.inbox is None:
            return
        receipt = self.inbox.receive(body)
        if receipt.duplicate:
            error = RuntimeError(f"{receipt.kind} message received twice")
            self.record(DUPLICATE_TYPE, receipt.kind, 0.0, 0, error)
        elif receipt.own:
            self._echoes.put(body["seq"])
        else:
            name = "announce receipt" if receipt.kind == "announce" else None
            name = name or f"{receipt.kind} fanout"
            self.record(WS, name, receipt.latency_ms, length, None)

    def _report_losses(self, deadline: float) -> None:
        if self.inbox is None:
            return
        inbox = self.inbox
        until = self._died_at or time.monotonic()
        expected = inbox.expected(self.ledger, until)
        # Messages sent before ``until`` may still be on their way; the reader
        # keeps adding them to the inbox meanwhile.
        unseen = inbox.unseen(expected)
        while unseen and not self._died_at and time.monotonic() < deadline:
            time.sleep(_DRAIN_POLL)
            unseen = inbox.unseen(unseen)
        self.inbox = None
        if not unseen:
            return
        # Which messages, and how long before the end they were sent, tells
        # slow delivery (sent just before) from loss (sent long before).
        logger.warning(
            "lost_messages receiver=%s count=%d first=%s",
            self.me,
            len(unseen),
            [(item.sender, item.seq, round(item.age, 3)) for item in unseen[:5]],
        )
        for kind, count in count_by_kind(unseen).items():
            error = RuntimeError(f"{kind} message never arrived")
            for _ in range(count):
                self.record(LOST_TYPE, kind, 0.0, 0, error)

    def _done(self, kind: str, name: str, started: float) -> None:
        self.record(kind, name, (time.perf_counter() - started) * 1000.0, 0, None)

    def _fail(self, kind: str, name: str, started: float, exc: Exception) -> NoReturn:
        elapsed = (time.perf_counter() - started) * 1000.0
        self.record(kind, name, elapsed, 0, exc)
        raise ExchangeError(f"{name}: {exc}") from exc

    @staticmethod
    def _clear(pending: queue.Queue[Any]) -> None:
        while not pending.empty():
            pending.get_nowait()


def _close_handshake(ws: websocket.WebSocket, timeout: float) -> bool:
    """Send a close frame, read until the server's, then drop the socket.

    Not ``WebSocket.close()``: its bare ``except:`` also swallows the
    GreenletExit with which locust stops a user, and the user lives on.
    """
    try:
        ws.send_close()
        ws.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ws.recv() == "":  # what recv() returns for the close frame
                return True
        return False
    except Exception:
        return False
    finally:
        _shutdown(ws)


def _shutdown(ws: Any) -> None:
    # Closes the socket without a close handshake (untyped in websocket-client).
    ws.shutdown()
