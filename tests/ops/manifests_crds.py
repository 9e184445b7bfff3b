"""JSON schemas for the Prometheus Operator objects the manifests use.

``kubernetes-validate`` knows only built-in kinds. These schemas follow the
shape of the ``monitoring.coreos.com/v1`` CRDs (ServiceMonitor,
PrometheusRule) for the fields this repository uses, with the CRDs' required
fields, enums and duration syntax, and reject any other field: a typo, or a
field from another API version, fails instead of being ignored by the
operator.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PROMETHEUS_RULE", "SERVICE_MONITOR"]

# The operator's Duration type (e.g. "30s", "1h30m", "0").
_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?"
    r"(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
_NAME = {"type": "string", "minLength": 1}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_LABEL_NAME = {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"}


def _object(
    properties: dict[str, Any], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_METADATA = {
    "type": "object",
    "properties": {
        "name": _NAME,
        "namespace": _NAME,
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    "required": ["name"],
    "additionalProperties": False,
}

_SECRET_KEY_SELECTOR = _object(
    {"name": _NAME, "key": _NAME, "optional": {"type": "boolean"}}, ("key",)
)

_ENDPOINT = _object(
    {
        "port": _NAME,
        "targetPort": {"type": ["string", "integer"]},
        "path": {"type": "string", "pattern": "^/"},
        "scheme": {"enum": ["http", "https"]},
        "interval": _DURATION,
        "scrapeTimeout": _DURATION,
        "honorLabels": {"type": "boolean"},
        "authorization": _object(
            {"type": {"type": "string"}, "credentials": _SECRET_KEY_SELECTOR}
        ),
    }
)

SERVICE_MONITOR: dict[str, Any] = _object(
    {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": _METADATA,
        "spec": _object(
            {
                "jobLabel": _NAME,
                "targetLabels": {"type": "array", "items": _NAME},
                "namespaceSelector": _object(
                    {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": _NAME},
                    }
                ),
                "selector": _object({"matchLabels": _STRING_MAP}),
                "endpoints": {"type": "array", "items": _ENDPOINT, "minItems": 1},
            },
            ("selector", "endpoints"),
        ),
    },
    ("apiVersion", "kind", "metadata", "spec"),
)

_RULE = {
    "type": "object",
    "properties": {
        "alert": _NAME,
        "record": _NAME,
        "expr": {"type": ["string", "integer"], "minLength": 1},
        "for": _DURATION,
        "keep_firing_for": _DURATION,
        "labels": {
            "type": "object",
            "propertyNames": _LABEL_NAME,
            "additionalProperties": {"type": "string"},
        },
        "annotations": _STRING_MAP,
    },
    "required": ["expr"],
    "additionalProperties": False,
    # Exactly one of alert / record.
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
}

PROMETHEUS_RULE: dict[str, Any] = _object(
    {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": _METADATA,
        "spec": _object(
            {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": _object(
                        {
                            "name": _NAME,
                            "interval": _DURATION,
                            "limit": {"type": "integer"},
                            "rules": {"type": "array", "items": _RULE},
                        },
                        ("name",),
                    ),
                }
            },
            ("groups",),
        ),
    },
    ("apiVersion", "kind", "metadata", "spec"),
)
