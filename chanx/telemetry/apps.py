"""``chanx.telemetry`` in ``INSTALLED_APPS`` turns telemetry on for every consumer."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed

from chanx.settings import chanx_settings


class ChanxTelemetryConfig(AppConfig):
    """Installs the telemetry hooks at startup and when the setting changes."""

    name = "chanx.telemetry"
    label = "chanx_telemetry"
    verbose_name = "chanx telemetry"
    #: The ``CHANX["TELEMETRY"]`` value the installed hooks were built from.
    installed_setting: Any = None

    def ready(self) -> None:
        from chanx.telemetry.install import install

        type(self).installed_setting = chanx_settings.TELEMETRY
        install()
        setting_changed.connect(_reinstall, dispatch_uid="chanx_telemetry_reinstall")


def _reinstall(*, setting: str, **kwargs: Any) -> None:
    # Only a change of CHANX["TELEMETRY"] itself rebuilds the hooks, so
    # overriding another CHANX flag keeps hooks a test installed by hand.
    if setting != "CHANX":
        return
    try:
        value = chanx_settings.TELEMETRY
    except ValueError:
        # A bad CHANX dict raises where it is read; not in the middle of
        # override_settings' own bookkeeping.
        return
    if value == ChanxTelemetryConfig.installed_setting:
        return
    from chanx.telemetry.install import install

    ChanxTelemetryConfig.installed_setting = value
    install()
