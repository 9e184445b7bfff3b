"""App configuration of the demo chat app."""

from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    """The ``chat`` app."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"
