"""``CHANX["TELEMETRY"]``: which signals are on and how they are labelled.

Read through :data:`chanx.settings.chanx_settings`, so ``override_settings``
takes effect for hooks built afterwards. A typo in a key raises, as for the
other ``CHANX`` settings.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.utils.module_loading import import_string

from chanx.settings import chanx_settings
from chanx.telemetry.naming import default_group_template

__all__ = ["DEFAULTS", "TelemetryConfig", "telemetry_config"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULTS: dict[str, Any] = {
    # False (or CHANX["TELEMETRY"] = "disabled"): install nothing; the core's
    # no-op hooks cost one method call per step.
    "ENABLED": True,
    "LOGS": True,
    "TRACES": True,
    "METRICS": True,
    # Callable or dotted path: raw group name -> low-cardinality template.
    "GROUP_TEMPLATE": default_group_template,
    # Put the authenticated user's pk on log lines (never on metrics or spans).
    "LOG_USER_ID": True,
    # Log keys whose values are replaced by "[redacted]" (case-insensitive,
    # also matched as a substring: "access_token", "X-Authorization").
    "REDACT_KEYS": ["token", "password", "secret", "cookie", "authorization"],
    # How a `process` span relates to its producer: "parent" or "link".
    "PROCESS_SPAN": "parent",
    # Start chanx's spans on an SDK tracer provider without re-validating the
    # attributes chanx builds (chanx.telemetry.fast_spans); False: the SDK's
    # own start_span for every span.
    "FAST_SPANS": True,
    # /metrics protection: a bearer token and/or a list of CIDR networks.
    "METRICS_TOKEN": None,
    "METRICS_ALLOWED_NETWORKS": None,
    # Seconds /readyz waits for the channel-layer round trip.
    "READYZ_TIMEOUT": 2.0,
}


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """The parsed ``CHANX["TELEMETRY"]`` settings."""

    enabled: bool = True
    logs: bool = True
    traces: bool = True
    metrics: bool = True
    group_template: Callable[[str], str] = default_group_template
    log_user_id: bool = True
    redact_keys: tuple[str, ...] = tuple(DEFAULTS["REDACT_KEYS"])
    process_span: Literal["parent", "link"] = "parent"
    fast_spans: bool = True
    metrics_token: str | None = None
    metrics_allowed_networks: tuple[Network, ...] | None = None
    readyz_timeout: float = 2.0

    @classmethod
    def from_setting(cls, value: Mapping[str, Any] | str | None) -> TelemetryConfig:
        """Parse a ``CHANX["TELEMETRY"]`` value.

        Raises:
            ValueError: Unknown keys or values, with the accepted ones.
        """
        if value == "disabled":
            return cls(enabled=False)
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ValueError(
                'CHANX["TELEMETRY"] must be a dict or "disabled", '
                f"not {type(value).__name__}"
            )
        unknown = set(value) - set(DEFAULTS)
        if unknown:
            raise ValueError(
                f'Unknown CHANX["TELEMETRY"] key(s): {sorted(unknown)}; '
                f"known keys are {sorted(DEFAULTS)}"
            )
        merged = {**DEFAULTS, **value}
        return cls(
            enabled=bool(merged["ENABLED"]),
            logs=bool(merged["LOGS"]),
            traces=bool(merged["TRACES"]),
            metrics=bool(merged["METRICS"]),
            group_template=_callable(merged["GROUP_TEMPLATE"]),
            log_user_id=bool(merged["LOG_USER_ID"]),
            redact_keys=tuple(str(key).lower() for key in merged["REDACT_KEYS"]),
            process_span=_process_span(merged["PROCESS_SPAN"]),
            fast_spans=bool(merged["FAST_SPANS"]),
            metrics_token=merged["METRICS_TOKEN"] or None,
            metrics_allowed_networks=_networks(merged["METRICS_ALLOWED_NETWORKS"]),
            readyz_timeout=float(merged["READYZ_TIMEOUT"]),
        )


def _callable(value: Any) -> Callable[[str], str]:
    func = import_string(value) if isinstance(value, str) else value
    if not callable(func):
        raise ValueError(
            'CHANX["TELEMETRY"]["GROUP_TEMPLATE"] must be a callable or a dotted path'
        )
    return func  # type: ignore[no-any-return]


def _process_span(value: Any) -> Literal["parent", "link"]:
    if value == "parent":
        return "parent"
    if value == "link":
        return "link"
    raise ValueError(
        f'CHANX["TELEMETRY"]["PROCESS_SPAN"] must be "parent" or "link", not {value!r}'
    )


def _networks(value: Any) -> tuple[Network, ...] | None:
    if value is None:
        return None
    return tuple(ipaddress.ip_network(str(item), strict=False) for item in value)


def telemetry_config() -> TelemetryConfig:
    """The current ``CHANX["TELEMETRY"]`` settings, parsed."""
    return TelemetryConfig.from_setting(chanx_settings.TELEMETRY)
