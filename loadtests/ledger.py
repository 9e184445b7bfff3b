"""Message-loss accounting: who sent which sequence numbers, who received them.

Every chat, broadcast and announcement message carries ``sender`` (one id per
sending connection) and ``seq`` (1, 2, 3, ... per sender). Senders record each
message in the process-wide :class:`SentLedger` with the monotonic time at
which they started sending it. A receiver keeps an :class:`Inbox` per
connection; when it finishes, it expects every message sent to its streams
(a room, or the announcements) *after* its authentication frame arrived: the
server joins the groups before it sends that frame, so such messages must
reach the connection. Anything expected but missing is lost; anything
received twice is a duplicate.

All locust users run in one process (no distributed mode), so one ledger and
one monotonic clock serve everybody. No locust import here: pytest imports
this module.
"""

from __future__ import annotations

import bisect
import json
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "Expected",
    "Inbox",
    "Receipt",
    "SentLedger",
    "count_by_kind",
    "decode_body",
    "encode_body",
]


def encode_body(sender: str, seq: int, kind: str) -> str:
    """The text a tracked message carries (a chat line's or announcement's content)."""
    return json.dumps({"sender": sender, "seq": seq, "kind": kind, "ts": time.time()})


def decode_body(text: object) -> dict[str, Any] | None:
    """Inverse of :func:`encode_body`; ``None`` for any other text."""
    if not isinstance(text, str) or not text.startswith("{"):
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if (
        isinstance(body, dict)
        and isinstance(body.get("sender"), str)
        and isinstance(body.get("seq"), int)
        and isinstance(body.get("kind"), str)
        and isinstance(body.get("ts"), (int, float))
    ):
        return body
    return None


@dataclass
class _SenderLog:
    stream: str
    seqs: list[int] = field(default_factory=list)
    started: list[float] = field(default_factory=list)


class SentLedger:
    """Sequence numbers each sender managed to send, with their start times."""

    def __init__(self) -> None:
        self._senders: dict[str, _SenderLog] = {}

    def record(self, sender: str, stream: str, seq: int, started: float) -> None:
        """Note that ``sender`` sent ``seq`` to ``stream``, starting at ``started``.

        Call it once the send succeeded; a message whose send failed is
        simply never recorded, so nobody expects it.
        """
        log = self._senders.setdefault(sender, _SenderLog(stream))
        log.seqs.append(seq)
        log.started.append(started)

    def sent(
        self, stream: str, after: float, until: float
    ) -> list[tuple[str, int, float]]:
        """``(sender, seq, start time)`` of messages sent to ``stream`` in ``(after, until]``."""
        result: list[tuple[str, int, float]] = []
        for sender, log in self._senders.items():
            if log.stream == stream:
                lo = bisect.bisect_right(log.started, after)
                hi = bisect.bisect_right(log.started, until)
                result.extend(
                    (sender, seq, started)
                    for seq, started in zip(
                        log.seqs[lo:hi], log.started[lo:hi], strict=True
                    )
                )
        return result

    def clear(self) -> None:
        """Forget everything (a new test run in the same process)."""
        self._senders.clear()


class Expected(NamedTuple):
    """A message a connection must receive, and how long before the cut-off it was sent."""

    kind: str
    sender: str
    seq: int
    age: float


@dataclass(frozen=True)
class Receipt:
    """What :meth:`Inbox.receive` learnt about one tracked message.

    Attributes:
        kind: ``chat``, ``broadcast`` or ``announce``.
        own: The receiving connection sent it itself.
        duplicate: It had arrived before.
        latency_ms: Time since the sender stamped it (one clock: same machine).
    """

    kind: str
    own: bool
    duplicate: bool
    latency_ms: float


class Inbox:
    """Messages one connection received, per ``(sender, seq)``."""

    def __init__(self, me: str, streams: dict[str, str], joined_at: float) -> None:
        """Track messages for the connection ``me``.

        Args:
            me: The connection's own sender id.
            streams: The ledger streams it belongs to -> their kind of message.
            joined_at: Monotonic time its authentication frame arrived.
        """
        self.me = me
        self.streams = dict(streams)
        self.joined_at = joined_at
        self._seen: set[tuple[str, int]] = set()

    def receive(self, body: dict[str, Any]) -> Receipt:
        """Record a decoded message body (see :func:`decode_body`)."""
        key = (body["sender"], body["seq"])
        duplicate = key in self._seen
        self._seen.add(key)
        latency_ms = max(0.0, (time.time() - float(body["ts"])) * 1000.0)
        return Receipt(body["kind"], body["sender"] == self.me, duplicate, latency_ms)

    def expected(self, ledger: SentLedger, until: float) -> list[Expected]:
        """Every message this connection must get, sent up to ``until``.

        Args:
            ledger: Where the senders recorded their messages.
            until: Only messages sent up to this monotonic time count.
        """
        return [
            Expected(kind, sender, seq, until - started)
            for stream, kind in self.streams.items()
            for sender, seq, started in ledger.sent(stream, self.joined_at, until)
        ]

    def unseen(self, expected: list[Expected]) -> list[Expected]:
        """The messages of ``expected`` that have not arrived (yet)."""
        return [item for item in expected if (item.sender, item.seq) not in self._seen]

    def missing(self, ledger: SentLedger, until: float) -> dict[str, int]:
        """Expected but not received messages, counted per kind of stream."""
        return count_by_kind(self.unseen(self.expected(ledger, until)))


def count_by_kind(items: list[Expected]) -> dict[str, int]:
    """How many of ``items`` there are of each kind."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item.kind] = counts.get(item.kind, 0) + 1
    return counts
