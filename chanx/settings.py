"""The ``CHANX`` settings dict, read so that ``override_settings`` takes effect.

Values are looked up in ``settings.CHANX`` and fall back to :data:`DEFAULTS`.
The merged view is cached and dropped whenever Django reports that ``CHANX``
changed, so consumers created after ``override_settings(CHANX=...)`` see it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed

__all__ = ["DEFAULTS", "ChanxSettings", "chanx_settings"]

DEFAULTS: dict[str, Any] = {
    # Key that carries the message type on the wire (the model field is ``action``).
    "MESSAGE_ACTION_KEY": "action",
    "SEND_COMPLETION": False,
    "SEND_MESSAGE_IMMEDIATELY": True,
    "SEND_AUTHENTICATION_MESSAGE": True,
    "LOG_RECEIVED_MESSAGE": True,
    "LOG_SENT_MESSAGE": True,
    "LOG_IGNORED_ACTIONS": [],
    # camelCase keys on the wire (needs the ``camel-case`` extra: pyhumps).
    "CAMELIZE": False,
    # Seconds between close_old_connections() runs while dispatching frames
    # (0: before every frame, as plain Channels does; None: never).
    "CLOSE_OLD_CONNECTIONS_INTERVAL": 1.0,
    # Read by chanx.telemetry (see chanx/telemetry/config.py): a dict of
    # switches, or "disabled".
    "TELEMETRY": {},
    # Limits on client input (chanx/limits.py, docs/security.md); None or 0: off.
    # 64 KiB holds any chat-sized message; uvicorn's own cap is 16 MiB.
    "MAX_FRAME_BYTES": 65536,
    # Real messages nest a handful of levels; json.loads recurses per level.
    "MAX_JSON_DEPTH": 32,
    # Frames per second per connection, bucket size, refusals before 4429.
    "RATE_LIMIT": {"RATE": 20.0, "BURST": 40, "CLOSE_AFTER": 50},
    # Open connections per process (all consumers); None: unlimited.
    "MAX_CONNECTIONS": None,
    # Faults (docs/operations-faults.md). Seconds one channel-layer call
    # (group_send/group_add/group_discard) may take before it counts as
    # failed; channels-redis can hang on a half-dead Redis. None: unbounded.
    "CHANNEL_LAYER_TIMEOUT": 5.0,
    # Seconds one frame may wait for a client that does not read before the
    # connection is dropped with 4408; None: wait forever (memory may grow).
    "SEND_TIMEOUT": 10.0,
    # Seconds `python -m chanx.serve` lets connections finish on SIGTERM.
    "DRAIN_TIMEOUT": 30.0,
}


class ChanxSettings:
    """Attribute access to the merged ``CHANX`` settings.

    Example:
        >>> chanx_settings.SEND_COMPLETION
        False
    """

    def __init__(self) -> None:
        self._cache: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the merged settings (defaults overlaid with ``settings.CHANX``)."""
        if self._cache is None:
            user = getattr(django_settings, "CHANX", None) or {}
            unknown = set(user) - set(DEFAULTS)
            if unknown:
                # A typo in a flag name would otherwise silently keep the default.
                raise ValueError(
                    f"Unknown CHANX setting(s): {sorted(unknown)}; "
                    f"known keys are {sorted(DEFAULTS)}"
                )
            self._cache = {**DEFAULTS, **user}
        return self._cache

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(name)
        return self.as_dict()[name]

    def reload(self) -> None:
        """Forget the cached values; the next access reads ``settings.CHANX``."""
        self._cache = None


chanx_settings = ChanxSettings()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "CHANX":
        chanx_settings.reload()


setting_changed.connect(_on_setting_changed)
