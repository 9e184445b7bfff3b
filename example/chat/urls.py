"""HTTP routes of the chat app, mounted under ``/api/`` by ``config.urls``."""

from __future__ import annotations

from django.urls import path

from chat.views import AnnounceView

urlpatterns = [
    path("announce/", AnnounceView.as_view(), name="announce"),
]
