"""``build_request``: the Django request DRF sees for a handshake scope."""

from __future__ import annotations

import weakref
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import QueryDict
from django.http.cookie import parse_cookie
from rest_framework.permissions import AllowAny

from chanx.generic import authenticator
from chanx.generic.requests import build_request


def scope(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "websocket",
        "path": "/ws/room/lobby/",
        "query_string": b"",
        "headers": [],
    }
    return {**base, **extra}


def test_path_and_method() -> None:
    request = build_request(scope(), "post")
    assert request.method == "POST"
    assert request.path == request.path_info == "/ws/room/lobby/"
    assert request.META["PATH_INFO"] == "/ws/room/lobby/"
    assert request.META["REQUEST_METHOD"] == "POST"


def test_headers_become_meta_keys() -> None:
    request = build_request(
        scope(
            headers=[
                (b"authorization", b"Token abc"),
                (b"x-forwarded-for", b"198.51.100.1"),
                (b"Content-Type", b"application/json"),
                (b"content-length", b"0"),
                (b"origin", b"https://example.com"),
            ]
        )
    )
    assert request.META["HTTP_AUTHORIZATION"] == "Token abc"
    assert request.META["HTTP_X_FORWARDED_FOR"] == "198.51.100.1"
    assert request.META["CONTENT_TYPE"] == "application/json"
    assert request.META["CONTENT_LENGTH"] == "0"
    assert "HTTP_CONTENT_TYPE" not in request.META
    assert request.headers["Origin"] == "https://example.com"


def test_repeated_headers_are_joined_with_commas() -> None:
    request = build_request(
        scope(headers=[(b"x-tag", b"one"), (b"x-tag", b"two"), (b"x-tag", b"3")])
    )
    assert request.META["HTTP_X_TAG"] == "one,two,3"


def test_latin1_header_values_are_kept() -> None:
    request = build_request(scope(headers=[(b"x-name", "Zoë".encode("latin-1"))]))
    assert request.META["HTTP_X_NAME"] == "Zoë"


def test_cookies_are_parsed() -> None:
    request = build_request(
        scope(headers=[(b"cookie", b"sessionid=abc123; csrftoken=xyz; theme=dark")])
    )
    assert request.COOKIES == {
        "sessionid": "abc123",
        "csrftoken": "xyz",
        "theme": "dark",
    }


def test_malformed_cookie_header_is_parsed_as_django_does() -> None:
    header = 'bad"cookie\\; =;; sessionid=abc'
    request = build_request(scope(headers=[(b"cookie", header.encode())]))
    assert parse_cookie(header) == request.COOKIES
    assert request.COOKIES["sessionid"] == "abc"


@pytest.mark.parametrize(
    "header",
    [b'prefs={"a": 1}; sessionid=abc', b"a=b; note=two words; sessionid=abc"],
)
def test_one_unusual_cookie_does_not_hide_the_others(header: bytes) -> None:
    request = build_request(scope(headers=[(b"cookie", header)]))
    assert request.COOKIES["sessionid"] == "abc"


def test_no_cookie_header_means_no_cookies() -> None:
    assert build_request(scope()).COOKIES == {}


def test_query_string_becomes_get() -> None:
    request = build_request(scope(query_string=b"token=abc&tag=a&tag=b&q=caf%C3%A9"))
    assert request.GET["token"] == "abc"
    assert request.GET.getlist("tag") == ["a", "b"]
    assert request.GET["q"] == "café"
    assert request.META["QUERY_STRING"] == "token=abc&tag=a&tag=b&q=caf%C3%A9"


def test_query_string_as_text_is_accepted() -> None:
    assert build_request(scope(query_string="a=1")).GET["a"] == "1"


def test_client_and_server_addresses() -> None:
    request = build_request(
        scope(client=("192.0.2.10", 40000), server=("ws.example.com", 8443))
    )
    assert request.META["REMOTE_ADDR"] == "192.0.2.10"
    assert request.META["SERVER_NAME"] == "ws.example.com"
    assert request.META["SERVER_PORT"] == "8443"


def test_missing_client_and_server() -> None:
    request = build_request(scope())
    assert request.META["REMOTE_ADDR"] == ""
    assert request.META["SERVER_NAME"] == "localhost"
    assert request.META["SERVER_PORT"] == ""


def test_client_none_is_tolerated() -> None:
    assert build_request(scope(client=None)).META["REMOTE_ADDR"] == ""


def test_scope_user_and_session_are_attached() -> None:
    user = AnonymousUser()
    session: dict[str, Any] = {"k": "v"}
    request = build_request(scope(user=user, session=session))
    assert request.user is user
    assert request.session is session


def test_without_scope_user_request_has_no_user() -> None:
    assert not hasattr(build_request(scope()), "user")


def test_released_request_reads_the_same_again() -> None:
    request = build_request(
        scope(
            headers=[(b"cookie", b"sessionid=abc"), (b"x-tag", b"one")],
            query_string=b"a=1&a=2",
            client=("192.0.2.10", 40000),
        )
    )
    before = (dict(request.META), request.GET.getlist("a"), dict(request.COOKIES))
    request.release()
    after = (dict(request.META), request.GET.getlist("a"), dict(request.COOKIES))
    assert after == before
    assert request.headers["X-Tag"] == "one"


def test_body_containers_are_empty_and_assignable() -> None:
    request = build_request(scope(), "post")
    assert not request.POST
    assert not request.FILES
    request.POST = QueryDict("x=1")
    request.GET = QueryDict("y=2")
    assert request.POST["x"] == "1"
    assert request.GET["y"] == "2"


def test_an_accepted_handshake_keeps_the_request_but_not_the_drf_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    views: list[weakref.ref[Any]] = []

    class RecordedView(authenticator._HandshakeView):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            views.append(weakref.ref(self))

    monkeypatch.setattr(authenticator, "_HandshakeView", RecordedView)
    checks = authenticator.ChanxWebsocketAuthenticator(
        authentication_classes=[], permission_classes=[AllowAny]
    )
    result = checks.authenticate_sync(scope(query_string=b"q=1"))
    assert result.status_code == 200
    assert result.request is not None
    assert result.request.query_params["q"] == "1"
    assert "view" not in result.request.parser_context
    # Idle connections hold their request for good: the view (its own dict,
    # kwargs, headers, method names) is not part of it.
    [view] = views
    assert view() is None
