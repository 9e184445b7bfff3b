"""Per-connection behaviour flags: a class attribute wins over ``CHANX``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chanx.codec import Codec
from chanx.limits import NO_LIMITS, FrameLimits, build_limits
from chanx.settings import chanx_settings

__all__ = ["ConsumerConfig", "resolve_config"]

# Consumer attribute -> CHANX key.
FLAGS = {
    "send_completion": "SEND_COMPLETION",
    "send_message_immediately": "SEND_MESSAGE_IMMEDIATELY",
    "send_authentication_message": "SEND_AUTHENTICATION_MESSAGE",
    "log_received_message": "LOG_RECEIVED_MESSAGE",
    "log_sent_message": "LOG_SENT_MESSAGE",
    "log_ignored_actions": "LOG_IGNORED_ACTIONS",
    "max_frame_bytes": "MAX_FRAME_BYTES",
    "max_json_depth": "MAX_JSON_DEPTH",
    "rate_limit": "RATE_LIMIT",
}


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    """The flags one connection runs with, fixed when the consumer is created."""

    send_completion: bool
    send_message_immediately: bool
    send_authentication_message: bool
    log_received_message: bool
    log_sent_message: bool
    log_ignored_actions: frozenset[str]
    codec: Codec
    close_old_connections_interval: float | None
    log_user_id: bool = True
    limits: FrameLimits = NO_LIMITS


# Keyed by consumer class; an entry is valid while the settings dict it was
# built from is still the current one (override_settings replaces that dict).
_cache: dict[type[Any], tuple[dict[str, Any], ConsumerConfig]] = {}


def resolve_config(consumer: type[Any]) -> ConsumerConfig:
    """The flags for a new connection of ``consumer``."""
    current = chanx_settings.as_dict()
    cached = _cache.get(consumer)
    if cached is not None and cached[0] is current:
        return cached[1]
    values = {}
    for attr, key in FLAGS.items():
        override = getattr(consumer, attr, None)
        values[attr] = current[key] if override is None else override
    limits = build_limits(
        values["max_frame_bytes"],
        values["max_json_depth"],
        values["rate_limit"],
        current["MAX_CONNECTIONS"],
    )
    config = ConsumerConfig(
        send_completion=bool(values["send_completion"]),
        send_message_immediately=bool(values["send_message_immediately"]),
        send_authentication_message=bool(values["send_authentication_message"]),
        log_received_message=bool(values["log_received_message"]),
        log_sent_message=bool(values["log_sent_message"]),
        log_ignored_actions=frozenset(values["log_ignored_actions"]),
        codec=Codec(
            current["MESSAGE_ACTION_KEY"],
            bool(current["CAMELIZE"]),
            limits.max_json_depth,
        ),
        close_old_connections_interval=current["CLOSE_OLD_CONNECTIONS_INTERVAL"],
        log_user_id=_log_user_id(current["TELEMETRY"]),
        limits=limits,
    )
    _cache[consumer] = (current, config)
    return config


def _log_user_id(telemetry: Any) -> bool:
    # CHANX["TELEMETRY"]["LOG_USER_ID"] also governs the core's own log line
    # naming the user (connection_authenticated), not only telemetry context.
    if isinstance(telemetry, dict):
        return bool(telemetry.get("LOG_USER_ID", True))
    return True
