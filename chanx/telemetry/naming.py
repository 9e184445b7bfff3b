"""Low-cardinality names for groups, so they can label metrics and spans."""

from __future__ import annotations

import re
import threading

__all__ = ["BoundedNames", "default_group_template"]

# A separator-delimited segment holding a digit is treated as an id; so is a
# long hex run (uuid4().hex, hashes). Everything else is kept.
_ID_SEGMENT = re.compile(r"(?<![^._:\-/])[^._:\-/]*\d[^._:\-/]*(?![^._:\-/])")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{16,}")


def default_group_template(group: str) -> str:
    """Replace id-like segments of a group name with ``{id}``.

    Example:
        >>> default_group_template("chat_42")
        'chat_{id}'
        >>> default_group_template("user.7f3a9c.inbox")
        'user.{id}.inbox'
        >>> default_group_template("announcements")
        'announcements'

    Segments are separated by ``. _ : - /``. Free-form names without digits
    (``room_lobby``) pass unchanged: give such groups your own template with
    ``CHANX["TELEMETRY"]["GROUP_TEMPLATE"]``. :class:`BoundedNames` caps
    what reaches a label anyway.
    """
    return _ID_SEGMENT.sub("{id}", _HEX_RUN.sub("{id}", group))


class BoundedNames:
    """Remembers up to ``limit`` distinct names; any further one becomes ``other``.

    A safety net under a template function that lets free-form input through:
    a label never gets more than ``limit + 1`` values in one process.
    """

    def __init__(self, limit: int = 100, overflow: str = "other") -> None:
        self.limit = limit
        self.overflow = overflow
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        if name in self._seen:
            return name
        with self._lock:
            if len(self._seen) >= self.limit:
                return self.overflow
            self._seen.add(name)
        return name
