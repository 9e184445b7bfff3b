"""Limits on what one client may send: frame size, JSON depth, rate, connections.

Every check here runs before a frame is decoded and costs little: a length
comparison, two ``str.count`` calls and a token bucket refill. A frame over a
limit becomes an ``error`` frame (see :mod:`chanx.errors`) and the connection
stays usable; only a client that keeps flooding is closed with
:data:`RATE_LIMIT_CLOSE_CODE`.

Settings (``CHANX``, each overridable per consumer class, see
:class:`~chanx.generic.base.ConsumerBase`):

``MAX_FRAME_BYTES``
    Largest accepted text or binary frame, in UTF-8 bytes.
``MAX_JSON_DEPTH``
    Deepest accepted nesting of JSON arrays and objects.
``RATE_LIMIT``
    ``{"RATE": frames per second, "BURST": bucket size, "CLOSE_AFTER": refusals}``.
``MAX_CONNECTIONS``
    Open connections per process (all chanx consumers together).

``None`` or ``0`` (``False`` for ``RATE_LIMIT``) switches a limit off.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from chanx.errors import FrameError, detail

__all__ = [
    "CAPACITY_CLOSE_CODE",
    "DEFAULT_RATE_LIMIT",
    "NO_LIMITS",
    "RATE_LIMIT_CLOSE_CODE",
    "ConnectionSlots",
    "FrameGuard",
    "FrameLimits",
    "RateLimit",
    "TokenBucket",
    "build_limits",
    "connection_slots",
    "json_too_deep",
    "too_deep_error",
]

#: Close code for a client that kept sending over its rate (4000 + HTTP 429).
RATE_LIMIT_CLOSE_CODE = 4429
#: Close code for a handshake refused because the process is full (4000 + 503).
CAPACITY_CLOSE_CODE = 4503

#: Error types (the ``error_type`` metric label and ``FrameError.kind``).
FRAME_TOO_LARGE = "frame_too_large"
TOO_DEEP = "too_deep"
RATE_LIMITED = "rate_limited"

DEFAULT_RATE_LIMIT: dict[str, Any] = {"RATE": 20.0, "BURST": 40, "CLOSE_AFTER": 50}

Clock = Callable[[], float]

# String literals (unrolled loop: no per-character alternation, no
# backtracking); only needed when escaped quotes may hide a string's end.
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
# Brackets become "(" / ")", every other byte is dropped (UTF-8 bytes of
# other characters are never bracket bytes).
_PARENS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_too_deep(text: str, limit: int) -> bool:
    """Whether the JSON ``text`` nests arrays/objects more than ``limit`` deep.

    Works on the raw text with C-speed string operations only, so it neither
    recurses nor builds objects: run it before ``json.loads``, which recurses
    once per level. Each pass removes the innermost ``()`` pairs, i.e. one
    level of nesting; a frame ``limit`` deep is empty after ``limit`` passes.
    """
    # Fewer brackets than the limit cannot nest deeper: the usual frame
    # stops here after two counts.
    if text.count("[") + text.count("{") <= limit:
        return False
    outside = _STRINGS.sub("", text) if "\\" in text else "".join(text.split('"')[::2])
    nest = outside.encode("utf-8", "surrogatepass").translate(_PARENS, _NOT_BRACKETS)
    too_deep = b"(" * (limit + 1)
    for _ in range(limit):
        if too_deep in nest:  # the plain bomb, found without any pass
            return True
        shorter = nest.replace(b"()", b"")
        if len(shorter) == len(nest):
            # Unbalanced, so not JSON: json.loads says so, unless the parser
            # would first have to descend more than ``limit`` levels.
            return nest.count(b"(") > limit
        nest = shorter
        if not nest:
            return False
    return bool(nest)


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; one per frame.

    ``strikes`` counts the frames refused since the bucket was last full,
    that is since the client last stayed under its rate for a whole refill
    period; a client that backs off after a burst starts from zero again.
    """

    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate", "strikes")

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.strikes = 0
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def take(self) -> bool:
        """Spend one token; ``False`` (and a strike) if none is left."""
        now = self._clock()
        tokens = self._tokens + (now - self._stamp) * self.rate
        self._stamp = now
        if tokens >= self.burst:
            tokens = self.burst
            self.strikes = 0
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        self.strikes += 1
        return False


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A per-connection rate: ``rate``/s, bursts of ``burst``, closed after
    ``close_after`` refused frames (``None``: never closed)."""

    rate: float
    burst: int
    close_after: int | None


@dataclass(frozen=True, slots=True)
class FrameLimits:
    """The limits one consumer class runs with; ``None`` means no limit."""

    max_frame_bytes: int | None = None
    max_json_depth: int | None = None
    rate_limit: RateLimit | None = None
    max_connections: int | None = None

    def guard(self, clock: Clock = time.monotonic) -> FrameGuard:
        """A fresh per-connection guard."""
        return FrameGuard(self, clock)


#: No limit at all.
NO_LIMITS = FrameLimits()


_TOO_LARGE = FrameError(
    FRAME_TOO_LARGE, [detail(FRAME_TOO_LARGE, "Frame is larger than allowed")]
)
_RATE_LIMITED = FrameError(
    RATE_LIMITED, [detail(RATE_LIMITED, "Too many frames; slow down")]
)


def too_deep_error() -> FrameError:
    """The error for a frame nested deeper than ``MAX_JSON_DEPTH``."""
    return FrameError(TOO_DEEP, [detail("json_too_deep", "JSON nested too deeply")])


class FrameGuard:
    """Per-connection checks run on every frame before it is decoded."""

    __slots__ = ("_bucket", "_close_after", "_max_bytes", "closing")

    def __init__(self, limits: FrameLimits, clock: Clock = time.monotonic) -> None:
        self._max_bytes = limits.max_frame_bytes
        rate = limits.rate_limit
        self._bucket = (
            None if rate is None else TokenBucket(rate.rate, rate.burst, clock)
        )
        self._close_after = None if rate is None else rate.close_after
        #: Set once the connection is being closed for abuse: frames still
        #: queued behind the close are dropped.
        self.closing = False

    def admit(self, size: int) -> FrameError | None:
        """``None`` if a frame of ``size`` bytes may be handled, else why not.

        The returned errors are shared constants: treat them as read-only.
        """
        bucket = self._bucket
        if bucket is not None and not bucket.take():
            return _RATE_LIMITED
        if self._max_bytes is not None and size > self._max_bytes:
            return _TOO_LARGE
        return None

    @property
    def strikes(self) -> int:
        """Frames refused for rate since the client last backed off."""
        return 0 if self._bucket is None else self._bucket.strikes

    def abusive(self) -> bool:
        """Whether enough frames were refused to close the connection."""
        limit = self._close_after
        return limit is not None and self.strikes >= limit


class ConnectionSlots:
    """Counts the open connections of this process against ``MAX_CONNECTIONS``."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = 0

    def acquire(self, limit: int | None) -> bool:
        """Take a slot; ``False`` when ``limit`` slots are taken already."""
        if limit is not None and self.active >= limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        """Give back a slot taken with :meth:`acquire`."""
        self.active = max(self.active - 1, 0)


#: The process-wide connection count.
connection_slots = ConnectionSlots()


# Settings ---------------------------------------------------------------------


def _positive_int(name: str, value: Any) -> int | None:
    if value is None or value is False or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ImproperlyConfigured(
            f"CHANX{name} must be a positive int, 0 or None (no limit), not {value!r}"
        )
    return value


def _rate_limit(value: Any) -> RateLimit | None:
    if value is None or value is False or value == 0:
        return None
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(
            "CHANX['RATE_LIMIT'] must be a dict like "
            f"{DEFAULT_RATE_LIMIT!r}, or None to switch it off; got {value!r}"
        )
    unknown = set(value) - set(DEFAULT_RATE_LIMIT)
    if unknown:
        raise ImproperlyConfigured(
            f"Unknown CHANX['RATE_LIMIT'] key(s) {sorted(unknown)}; "
            f"known keys are {sorted(DEFAULT_RATE_LIMIT)}"
        )
    merged = {**DEFAULT_RATE_LIMIT, **value}
    rate, burst = merged["RATE"], merged["BURST"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0:
        raise ImproperlyConfigured(
            f"CHANX['RATE_LIMIT']['RATE'] must be a number > 0, not {rate!r}"
        )
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ImproperlyConfigured(
            f"CHANX['RATE_LIMIT']['BURST'] must be an int >= 1, not {burst!r}"
        )
    close_after = _positive_int("['RATE_LIMIT']['CLOSE_AFTER']", merged["CLOSE_AFTER"])
    return RateLimit(float(rate), burst, close_after)


def build_limits(
    max_frame_bytes: Any,
    max_json_depth: Any,
    rate_limit: Any,
    max_connections: Any = None,
) -> FrameLimits:
    """Validate the limit settings (``CHANX`` keys or class attributes).

    Raises:
        ImproperlyConfigured: A value of the wrong type, with a hint.
    """
    return FrameLimits(
        max_frame_bytes=_positive_int("['MAX_FRAME_BYTES']", max_frame_bytes),
        max_json_depth=_positive_int("['MAX_JSON_DEPTH']", max_json_depth),
        rate_limit=_rate_limit(rate_limit),
        max_connections=_positive_int("['MAX_CONNECTIONS']", max_connections),
    )
