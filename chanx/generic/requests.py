"""Build a Django ``HttpRequest`` from a WebSocket handshake scope.

DRF authenticators and permissions read headers, cookies, the query string
and the client address from a request; the handshake scope has all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, QueryDict
from django.http.cookie import parse_cookie

__all__ = ["build_request"]


def _header_meta(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    meta: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
        # Repeated headers are joined the way WSGI servers join them.
        meta[key] = f"{meta[key]},{value}" if key in meta else value
    return meta


def build_request(scope: Mapping[str, Any], method: str = "GET") -> HttpRequest:
    """Return a request that mirrors the handshake described by ``scope``.

    ``request.user`` is ``scope["user"]`` when Channels' auth middleware set it,
    which lets DRF's ``SessionAuthentication`` see the session user.
    """
    request = HttpRequest()
    request.method = method.upper()
    request.path = request.path_info = scope.get("path", "")
    query = scope.get("query_string", b"")
    query_text = query.decode("latin-1") if isinstance(query, bytes) else str(query)
    meta = _header_meta(list(scope.get("headers", [])))
    client = scope.get("client") or ("", 0)
    server = scope.get("server") or ("", 0)
    meta.update(
        REQUEST_METHOD=request.method,
        PATH_INFO=request.path,
        QUERY_STRING=query_text,
        REMOTE_ADDR=str(client[0] or ""),
        SERVER_NAME=str(server[0] or "localhost"),
        SERVER_PORT=str(server[1] or ""),
    )
    request.META = meta
    request.GET = QueryDict(query_text)
    # Django's own lenient parser: one odd cookie must not hide the others.
    request.COOKIES = parse_cookie(meta.get("HTTP_COOKIE", ""))
    if "user" in scope:
        request.user = scope["user"]
    if "session" in scope:
        request.session = scope["session"]
    return request
