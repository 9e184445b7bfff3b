"""Build a Django ``HttpRequest`` from a WebSocket handshake scope.

DRF authenticators and permissions read headers, cookies, the query string
and the client address from a request; the handshake scope has all of them.
A connection keeps its request (``consumer.request``) for as long as it is
open, so what the request derives from the scope (``META``, ``GET``,
``COOKIES``...) is built when first read and can be let go once the
handshake is over (:meth:`HandshakeRequest.release`): read again, it is
built again from the scope, which the connection keeps anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, QueryDict
from django.http.cookie import parse_cookie
from django.utils.datastructures import MultiValueDict
from django.utils.functional import cached_property

__all__ = ["HandshakeRequest", "build_request"]

# Everything HandshakeRequest (and HttpRequest) cache from the scope.
_DERIVED = ("META", "GET", "COOKIES", "headers", "_post", "_files")


def _header_meta(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    meta: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
        # Repeated headers are joined the way WSGI servers join them.
        meta[key] = f"{meta[key]},{value}" if key in meta else value
    return meta


def _query_text(scope: Mapping[str, Any]) -> str:
    query = scope.get("query_string", b"")
    return query.decode("latin-1") if isinstance(query, bytes) else str(query)


class HandshakeRequest(HttpRequest):
    """The ``HttpRequest`` of a handshake, reading ``scope`` on demand.

    ``META``, ``GET``, ``COOKIES``, ``POST`` and ``FILES`` are built when
    first read, as Django's ``WSGIRequest`` does; assigning to them works as
    usual. :meth:`release` forgets them again.
    """

    def __init__(self, scope: Mapping[str, Any], method: str = "GET") -> None:
        # Not HttpRequest.__init__: it builds the containers up front.
        self._scope = scope
        self.method = method.upper()
        self.path = self.path_info = scope.get("path", "")
        self.resolver_match = None
        self.content_type = None
        self.content_params = None

    @cached_property
    def META(self) -> dict[str, Any]:  # type: ignore[override]
        scope = self._scope
        meta: dict[str, Any] = _header_meta(list(scope.get("headers", [])))
        client = scope.get("client") or ("", 0)
        server = scope.get("server") or ("", 0)
        meta.update(
            REQUEST_METHOD=self.method,
            PATH_INFO=self.path,
            QUERY_STRING=_query_text(scope),
            REMOTE_ADDR=str(client[0] or ""),
            SERVER_NAME=str(server[0] or "localhost"),
            SERVER_PORT=str(server[1] or ""),
        )
        return meta

    @cached_property
    def GET(self) -> QueryDict:  # type: ignore[override]
        return QueryDict(_query_text(self._scope), encoding=self.encoding)

    @cached_property
    def COOKIES(self) -> dict[str, str]:  # type: ignore[override]
        # Django's own lenient parser: one odd cookie must not hide the others.
        return parse_cookie(self.META.get("HTTP_COOKIE", ""))

    # As in WSGIRequest, through _post/_files: DRF assigns those directly.
    @property
    def POST(self) -> Any:
        if not hasattr(self, "_post"):
            self._post: Any = QueryDict(mutable=True)
        return self._post

    @POST.setter
    def POST(self, value: Any) -> None:
        self._post = value

    @property
    def FILES(self) -> MultiValueDict[str, Any]:
        if not hasattr(self, "_files"):
            self._files: MultiValueDict[str, Any] = MultiValueDict()
        return self._files

    @FILES.setter
    def FILES(self, value: MultiValueDict[str, Any]) -> None:
        self._files = value

    def release(self) -> None:
        """Forget what was built from the scope; the next read builds it again.

        Called once the handshake's checks are done. What they wrote into
        ``META`` (Django's CSRF check notes its cookie there) is forgotten too.
        """
        for name in _DERIVED:
            self.__dict__.pop(name, None)


def build_request(scope: Mapping[str, Any], method: str = "GET") -> HandshakeRequest:
    """Return a request that mirrors the handshake described by ``scope``.

    ``request.user`` is ``scope["user"]`` when Channels' auth middleware set it,
    which lets DRF's ``SessionAuthentication`` see the session user.
    """
    request = HandshakeRequest(scope, method)
    if "user" in scope:
        request.user = scope["user"]
    if "session" in scope:
        request.session = scope["session"]
    return request
