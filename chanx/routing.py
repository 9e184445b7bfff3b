"""WebSocket URL routing: Django's ``path``/``re_path`` and an ``include`` for routers.

Example:
    >>> from channels.routing import URLRouter
    >>> router = URLRouter([path("ws/", include("chat.routing"))])
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from channels.routing import URLRouter
from django.urls import path, re_path

from chanx.hooks import UNKNOWN

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

    Gives logs and telemetry a bounded route name whatever router was used:
    each URL kwarg replaces the path segments it came from (a converted value
    such as ``<int:pk>`` from ``007`` included). When a kwarg cannot be found
    in the path, the result is ``"unknown"`` rather than the raw path.
    """
    segments = path_.split("/")
    # Longest values first, so "a/b" is placed before a kwarg equal to "a".
    for name, value in sorted(kwargs.items(), key=lambda item: -len(str(item[1]))):
        parts = str(value).split("/")
        start = _find_run(segments, parts, value)
        if start is None:
            return UNKNOWN
        segments[start : start + len(parts)] = [f"<{name}>"]
    # Bounded, and the same for every connection to a route: each connection
    # holds the one shared string rather than a copy of its own.
    return sys.intern("/".join(segments))


def _find_run(segments: list[str], parts: list[str], value: Any) -> int | None:
    # From the end: URL kwargs usually follow the fixed prefix.
    for start in range(len(segments) - len(parts), -1, -1):
        window = segments[start : start + len(parts)]
        if window == parts or (len(parts) == 1 and _converts_to(window[0], value)):
            return start
    return None


def _converts_to(segment: str, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return type(value)(segment) == value
    except ValueError:
        return False
