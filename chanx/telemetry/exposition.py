"""Serve the metrics in the Prometheus text format, behind optional access rules.

With ``PROMETHEUS_MULTIPROC_DIR`` set (several worker processes), every scrape
merges the files all workers wrote, after dropping the live gauges of workers
that are gone, so a crashed worker's open connections do not linger.
"""

from __future__ import annotations

import glob
import hmac
import ipaddress
import os
import re

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from chanx.telemetry.config import TelemetryConfig, telemetry_config

__all__ = ["check_access", "metrics_view", "render_metrics"]

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Live gauge files are named gauge_live<mode>_<pid>.db.
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db")


def render_metrics(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The current metrics as ``(body, content_type)``.

    Args:
        registry: What to expose in a single process (default: the global
            ``REGISTRY``). Ignored when ``PROMETHEUS_MULTIPROC_DIR`` is set:
            then the files of all workers are merged instead.
    """
    path = os.environ.get(_MULTIPROC_ENV)
    if path:
        _mark_dead_processes(path)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=path)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST
    target = REGISTRY if registry is None else registry
    return generate_latest(target), CONTENT_TYPE_LATEST


def _mark_dead_processes(path: str) -> None:
    pids: set[int] = set()
    for name in glob.glob(os.path.join(path, "gauge_live*.db")):
        match = _LIVE_GAUGE_FILE.fullmatch(os.path.basename(name))
        if match:
            pids.add(int(match.group(1)))
    for pid in pids:
        if not _process_exists(pid):
            multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # It exists, owned by another user.
        return True
    return True


def check_access(
    remote_addr: str | None, authorization: str | None, config: TelemetryConfig
) -> int | None:
    """Whether a scrape may read the metrics.

    Args:
        remote_addr: The client's IP address.
        authorization: The ``Authorization`` header, ``"Bearer <token>"``.
        config: ``metrics_allowed_networks`` and ``metrics_token``.

    Returns:
        ``None`` when allowed, ``403`` for an address outside the allowed
        networks, ``401`` for a missing or wrong token.
    """
    networks = config.metrics_allowed_networks
    if networks is not None and not _address_in(remote_addr, networks):
        return 403
    token = config.metrics_token
    if token is not None and not _token_matches(authorization, token):
        return 401
    return None


def _address_in(
    remote_addr: str | None,
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> bool:
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def _token_matches(authorization: str | None, token: str) -> bool:
    scheme, _, given = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Constant time, so the token cannot be guessed byte by byte.
    return hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: the Prometheus text format, if :func:`check_access` allows."""
    status = check_access(
        request.META.get("REMOTE_ADDR"),
        request.headers.get("Authorization"),
        telemetry_config(),
    )
    if status is not None:
        return _denied(status)
    body, content_type = render_metrics()
    return HttpResponse(body, content_type=content_type)


def _denied(status: int) -> HttpResponse:
    response = HttpResponse(
        b"Unauthorized" if status == 401 else b"Forbidden",
        status=status,
        content_type="text/plain; charset=utf-8",
    )
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response
