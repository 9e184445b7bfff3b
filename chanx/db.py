"""Closing stale database connections without a thread hop per frame.

Channels calls ``close_old_connections`` in the ORM's worker thread before
every message it dispatches, the way Django does per HTTP request. For a
WebSocket that costs a thread round trip per frame (about 40% of a plain
Channels echo). chanx does it at most once per ``interval`` seconds per process,
which still retires connections past ``CONN_MAX_AGE`` or broken ones, just with
that much lag.
"""

from __future__ import annotations

import time

from channels.db import aclose_old_connections

__all__ = ["ConnectionCloser"]


class ConnectionCloser:
    """Runs ``close_old_connections`` at most once per ``interval`` seconds:
    ``if closer.due(interval): await closer.close()``.

    ``interval`` 0 runs it for every call (Channels' behaviour); ``None`` never.
    """

    def __init__(self) -> None:
        self._last = float("-inf")

    def due(self, interval: float | None) -> bool:
        """Whether ``interval`` has passed since the last close (and it is now
        taken as done: call :meth:`close` when this says so)."""
        if interval is None:
            return False
        now = time.monotonic()
        if now - self._last >= interval:
            self._last = now
            return True
        return False

    async def close(self) -> None:
        """Close stale connections in the ORM's thread."""
        await aclose_old_connections()


# One per process: the connections live in the ORM's single worker thread.
closer = ConnectionCloser()
