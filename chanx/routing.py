"""WebSocket URL routing: Django's ``path``/``re_path`` and an ``include`` for routers.

Example:
    >>> from channels.routing import URLRouter
    >>> router = URLRouter([path("ws/", include("chat.routing"))])
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from channels.routing import URLRouter
from django.urls import path, re_path

__all__ = ["include", "path", "re_path", "route_template"]


def include(target: str | ModuleType | URLRouter | list[Any]) -> URLRouter:
    """Return a router to nest under a prefix.

    Args:
        target: A ``URLRouter``, a list of routes, or a module (or its dotted
            path) that defines ``router`` (a ``URLRouter``) or
            ``websocket_urlpatterns`` (a list of routes).
    """
    if isinstance(target, URLRouter):
        return target
    if isinstance(target, list):
        return URLRouter(target)
    module = importlib.import_module(target) if isinstance(target, str) else target
    router = getattr(module, "router", None)
    if isinstance(router, URLRouter):
        return router
    patterns = getattr(module, "websocket_urlpatterns", None)
    if isinstance(patterns, list):
        return URLRouter(patterns)
    raise ImportError(
        f"{module.__name__} defines neither 'router' (a URLRouter) nor "
        "'websocket_urlpatterns' (a list of routes) to include"
    )


def route_template(path_: str, kwargs: Mapping[str, Any]) -> str:
    """``/ws/chat/lobby/`` with ``{"room": "lobby"}`` -> ``/ws/chat/<room>/``.

    Gives logs and telemetry a bounded route name whatever router was used.
    """
    if not kwargs:
        return path_
    names = {str(value): name for name, value in kwargs.items()}
    return "/".join(f"<{names[p]}>" if p in names else p for p in path_.split("/"))
