"""The demo's settings with short fault timeouts, for the fault e2e tests.

The servers under test load this module (``DJANGO_SETTINGS_MODULE``); the
timeouts come from the environment so each test picks its own.
"""

from __future__ import annotations

import os

from config.settings import *  # noqa: F403
from config.settings import CHANX as DEMO_CHANX


def _seconds(name: str, default: str) -> float | None:
    value = os.environ.get(name, default)
    return None if value == "none" else float(value)


CHANX = {
    **DEMO_CHANX,
    "CHANNEL_LAYER_TIMEOUT": _seconds("FAULTS_LAYER_TIMEOUT", "2"),
    "SEND_TIMEOUT": _seconds("FAULTS_SEND_TIMEOUT", "10"),
    # The slow-client test floods a room on purpose.
    "RATE_LIMIT": False,
}
