"""The DRF bridge: authenticate a WebSocket handshake with DRF classes.

Authentication, permissions and the object lookup run exactly as in a DRF
``GenericAPIView`` (same classes, same attributes, same status codes); the work
runs in a worker thread because authenticators and lookups hit the database.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import structlog
from channels.db import database_sync_to_async
from django.db.models import Model, QuerySet
from django.http import Http404
from rest_framework import exceptions
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.settings import api_settings

from chanx.generic.requests import build_request

__all__ = ["AuthenticationResult", "ChanxWebsocketAuthenticator", "close_code_for"]

_log = structlog.get_logger("chanx.auth")


def close_code_for(status_code: int) -> int:
    """WebSocket close code for a failed handshake: 4000 + the HTTP status."""
    return 4000 + status_code if 400 <= status_code < 600 else 4500


@dataclass
class AuthenticationResult:
    """The outcome of authenticating one handshake.

    Attributes:
        status_code: HTTP status: 200, or DRF's 401/403/404, or 500.
        data: ``{"detail": ...}`` as DRF would return it.
        user: ``request.user`` after authentication (may be anonymous).
        request: The DRF request the checks ran against.
        obj: The object from the URL kwargs, when a queryset is configured.
    """

    status_code: int
    data: Any = field(default_factory=dict)
    user: Any = None
    request: Request | None = None
    obj: Model | None = None

    @property
    def is_authenticated(self) -> bool:
        """True when every check passed."""
        return self.status_code == 200

    @property
    def status_text(self) -> str:
        """The HTTP reason phrase, e.g. ``"Forbidden"``."""
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return "Error"


# Every connection keeps its request, and the request its view, parsers and
# negotiator: these hold no per-request state, so all connections share them.
_JSON_RENDERER = JSONRenderer()


@functools.lru_cache(maxsize=32)
def _shared_instances(classes: tuple[type[Any], ...]) -> tuple[Any, ...]:
    return tuple(cls() for cls in classes)


@functools.lru_cache(maxsize=16)
def _method_names(method: str) -> list[str]:
    return [method.lower()]


class _HandshakeView(GenericAPIView):  # type: ignore[type-arg]
    """A DRF view that never renders: it only runs the checks."""

    def get_parsers(self) -> Any:
        # A handshake has no body: parsers are never used, only listed.
        return _shared_instances(tuple(self.parser_classes))

    def get_content_negotiator(self) -> Any:
        return _shared_instances((self.content_negotiation_class,))[0]

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[Any, str]:
        # Frames are always JSON; a browser's Accept header must not cause a 406.
        return _JSON_RENDERER, "application/json"


@dataclass(frozen=True)
class ChanxWebsocketAuthenticator:
    """Runs a consumer's DRF checks against a handshake scope.

    Built once per consumer class; :meth:`authenticate` is called once per
    connection. ``None`` for the class lists means DRF's configured defaults,
    read at call time so ``override_settings(REST_FRAMEWORK=...)`` applies.
    """

    authentication_classes: Sequence[type[Any]] | None = None
    permission_classes: Sequence[type[Any]] | None = None
    queryset: QuerySet[Any] | None = None
    auth_method: str = "get"
    lookup_field: str = "pk"
    lookup_url_kwarg: str | None = None

    async def authenticate(self, scope: Mapping[str, Any]) -> AuthenticationResult:
        """Authenticate, check permissions and fetch the object, off the event loop."""
        result: AuthenticationResult = await database_sync_to_async(
            self.authenticate_sync
        )(scope)
        return result

    def authenticate_sync(self, scope: Mapping[str, Any]) -> AuthenticationResult:
        """The blocking part of :meth:`authenticate`."""
        view = self._view(scope)
        try:
            handshake = build_request(scope, self.auth_method)
            request = view.initialize_request(handshake)
            view.request = request
            view.initial(request)
            obj = view.get_object() if self.queryset is not None else None
        except exceptions.APIException as exc:
            return self._failure(view, exc)
        except Http404:
            return AuthenticationResult(
                404, {"detail": "Not found."}, request=view.request
            )
        except Exception:
            _log.exception("authentication_error", path=scope.get("path"))
            return AuthenticationResult(500, {"detail": "Internal server error"})
        # The connection keeps the request: what it holds twice (the headers
        # are in the scope too) is rebuilt only if read again, and the view,
        # which DRF reads from parser_context only while parsing a body
        # renderers never see here, is let go (about 1 KB per connection).
        handshake.release()
        request.parser_context.pop("view", None)
        return AuthenticationResult(200, {"detail": "OK"}, request.user, request, obj)

    def _view(self, scope: Mapping[str, Any]) -> _HandshakeView:
        view = _HandshakeView()
        route = scope.get("url_route") or {}
        view.args = tuple(route.get("args", ()))
        view.kwargs = dict(route.get("kwargs", {}))
        view.format_kwarg = None
        view.headers = {}
        # api_settings imports the configured class paths; the stubs say str.
        # Not copied: DRF only iterates them.
        defaults: Any = api_settings
        view.authentication_classes = (
            defaults.DEFAULT_AUTHENTICATION_CLASSES
            if self.authentication_classes is None
            else self.authentication_classes
        )
        view.permission_classes = (
            defaults.DEFAULT_PERMISSION_CLASSES
            if self.permission_classes is None
            else self.permission_classes
        )
        if self.queryset is not None:
            view.queryset = self.queryset  # type: ignore[arg-type,unused-ignore]
        view.lookup_field = self.lookup_field
        view.lookup_url_kwarg = self.lookup_url_kwarg
        # DRF views refuse disallowed methods before any check; allow ours.
        view.http_method_names = _method_names(self.auth_method)
        return view

    @staticmethod
    def _failure(
        view: _HandshakeView, exc: exceptions.APIException
    ) -> AuthenticationResult:
        status_code = exc.status_code
        request = getattr(view, "request", None)
        unauthenticated = (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)
        # As in APIView.handle_exception: 401 needs a WWW-Authenticate scheme.
        if isinstance(exc, unauthenticated) and (
            request is None or not view.get_authenticate_header(request)
        ):
            status_code = 403
        data = (
            exc.detail if isinstance(exc.detail, dict) else {"detail": str(exc.detail)}
        )
        # request.user is not read here: on a failed authentication it raises again.
        return AuthenticationResult(status_code, data, None, request)
