"""OTLP/HTTP posts on one kept-alive ``http.client`` connection.

The official span exporter posts each batch through ``requests``: a session
that merges proxy and netrc settings from the environment, prepares the
request, runs hooks and goes through urllib3's pool. That is ~0.6 ms of CPU
per 512-span batch here, in the server's process and under the event loop's
GIL. For a plain ``http://`` collector (a sidecar or node agent, the usual
setup) :class:`PlainHTTPTransport` does the same post for ~0.2 ms: the
request line, headers and body in one ``send``, then the response.

It is only a transport: the official client still decides the headers,
compression, timeouts and retries, and calls :meth:`PlainHTTPTransport.request`
once per attempt. :func:`plain_http_applies` says when ``requests`` has
nothing to add: an ``http://`` endpoint without a proxy for it, a netrc
login for its host or a session of the user's (a credential provider).
"""

from __future__ import annotations

import contextlib
import http.client
import netrc
import os
import socket
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

from opentelemetry.exporter.http.transport._base import (
    BaseHTTPResult,
    BaseHTTPTransport,
)

__all__ = ["PlainHTTPResult", "PlainHTTPTransport", "plain_http_applies"]

# The official exporter's environment variables naming a credential
# provider: an entry point returning a requests.Session (auth, mTLS).
_CREDENTIAL_PROVIDERS = (
    "OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER",
    "OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER",
)
# What requests calls a connection error (retried by the official client):
# refused, reset, timed out, and a reply that is not HTTP or stops short.
_CONNECTION_ERRORS = (OSError, http.client.HTTPException)


def plain_http_applies(endpoint: str) -> bool:
    """Whether posting to ``endpoint`` needs nothing of ``requests``.

    False for ``https://`` (TLS settings), an endpoint the environment's
    proxy settings route through a proxy, a host with a login in the netrc
    file ``requests`` would read, or a credential provider set.
    """
    parts = urlsplit(endpoint)
    host = parts.hostname
    if parts.scheme != "http" or not host:
        return False
    if any(os.environ.get(name) for name in _CREDENTIAL_PROVIDERS):
        return False
    if _netrc_login(host):
        return False
    proxies = urllib.request.getproxies()
    if proxies.get("http") or proxies.get("all"):
        return bool(urllib.request.proxy_bypass(host))
    return True


def _netrc_login(host: str) -> bool:
    """Whether ``requests`` would send a login from a netrc file to ``host``."""
    # The files requests reads, in its order: the first that exists counts,
    # and one that does not parse is ignored, as requests does.
    named = os.environ.get("NETRC")
    for name in [named] if named else ["~/.netrc", "~/_netrc"]:
        path = os.path.expanduser(name)
        if os.path.exists(path):
            try:
                return netrc.netrc(path).authenticators(host) is not None
            except (netrc.NetrcParseError, OSError):
                return False
    return False


@dataclass(frozen=True, slots=True)
class PlainHTTPResult(BaseHTTPResult):
    """A response (status, reason, body, headers) or the error instead."""

    body: bytes = b""
    response_headers: Mapping[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        return self.body

    def headers(self) -> Mapping[str, str]:
        return self.response_headers


class PlainHTTPTransport(BaseHTTPTransport):
    """One kept-alive ``http.client`` connection, reopened after any error.

    Requests are serialized (the batch processor exports one batch at a
    time; a flush from another thread waits its turn); :meth:`close` does
    not wait for one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        # (url, host, port, path of the request line), for the last url.
        self._target: tuple[str, str, int, str] = ("", "", 0, "")

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        data: bytes | None = None,
    ) -> BaseHTTPResult:
        with self._lock:
            try:
                connection, path = self._open(url, timeout)
                connection.request(method, path, body=data, headers=headers or {})
                response = connection.getresponse()
                body = response.read()
            except _CONNECTION_ERRORS as error:
                self._close()
                return PlainHTTPResult(error=error)
            if response.will_close:
                self._close()
        return PlainHTTPResult(
            status_code=response.status,
            reason=response.reason,
            body=body,
            # An email Message: get() and [] ignore case, as the contract
            # asks (it has every Mapping method, without the registration).
            response_headers=cast(Mapping[str, str], response.headers),
        )

    def is_connection_error(self, exception: Exception | None) -> bool:
        return isinstance(exception, _CONNECTION_ERRORS)

    def close(self) -> None:
        """Close the connection; end a request in flight rather than wait for it.

        Shutdown closes the transport while the export thread may still wait
        on a collector that does not answer (up to the export timeout): the
        socket is shut down under it, and the request returns its error.
        """
        if self._lock.acquire(blocking=False):
            try:
                self._close()
            finally:
                self._lock.release()
            return
        connection = self._connection
        sock = None if connection is None else connection.sock
        if sock is not None:
            # Wakes the blocked read; its error path closes the connection.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _open(
        self, url: str, timeout: float | None
    ) -> tuple[http.client.HTTPConnection, str]:
        target = self._target
        if target[0] != url:
            parts = urlsplit(url)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            target = self._target = (url, parts.hostname or "", parts.port or 80, path)
        connection = self._connection
        if connection is not None and (connection.host, connection.port) != target[1:3]:
            self._close()
            connection = None
        if connection is None:
            connection = self._connection = http.client.HTTPConnection(
                target[1], target[2], timeout=timeout
            )
        else:
            # The attempt's remaining time, also for a connection kept open.
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
        return connection, target[3]

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
