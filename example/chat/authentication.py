"""DRF authentication that WebSocket clients in browsers can use."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request


class QueryTokenAuthentication(TokenAuthentication):
    """Token authentication that also reads the key from ``?token=<key>``.

    Browsers cannot set headers on a WebSocket handshake, so the key may come
    in the query string; without it, the ``Authorization: Token <key>`` header
    is used as usual. The ``WWW-Authenticate`` scheme stays ``Token``, so a
    missing or bad key is a 401 (close code 4401).

    Keys in URLs end up in access logs: prefer the header, or short-lived keys,
    outside a demo.
    """

    query_param = "token"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        key = request.query_params.get(self.query_param)
        if key:
            return self.authenticate_credentials(key)
        return super().authenticate(request)
