"""Django routes for the metrics and probes.

Mount them with ``path("", include("chanx.telemetry.urls"))`` for ``/metrics``,
``/healthz`` and ``/readyz``.
"""

from __future__ import annotations

from django.urls import URLPattern, path

from chanx.telemetry.exposition import metrics_view
from chanx.telemetry.health import healthz, readyz

__all__ = ["urlpatterns"]

urlpatterns: list[URLPattern] = [
    path("metrics", metrics_view, name="chanx-metrics"),
    path("healthz", healthz, name="chanx-healthz"),
    path("readyz", readyz, name="chanx-readyz"),
]
