"""Run an ASGI app under uvicorn with a graceful, draining shutdown.

Usage (every uvicorn option works; one more is added)::

    python -m chanx.serve config.asgi:application --host 0.0.0.0 --port 8000 \\
        --drain-timeout 30

On the first SIGTERM (or SIGINT) the server:

1. stops accepting connections (the listening sockets close);
2. asks every chanx connection to finish the message it is handling and
   close with 1001 "going away" (:func:`chanx.drain.drain`), waiting up to
   the drain timeout;
3. lets uvicorn close what is left (1012) and finish HTTP requests;
4. runs the :func:`chanx.drain.on_shutdown` callbacks: the telemetry SDK
   flushes its spans (``CHANX_TELEMETRY_SHUTDOWN_TIMEOUT``, default 5 s).

Plain uvicorn closes WebSockets with 1012 at once, mid-message, and ends the
process by re-raising the signal, which skips ``atexit`` span flushing.

Once the app is loaded, and before it serves, the process freezes the
objects it has built so far (:mod:`chanx.startup_heap`): full garbage
collections then skip them, which under load removes pauses of tens of
milliseconds. ``--no-gc-freeze`` (or ``CHANX_GC_FREEZE=0``) keeps them.

The drain timeout is ``--drain-timeout``, else ``CHANX_DRAIN_TIMEOUT`` in
the environment, else ``CHANX["DRAIN_TIMEOUT"]`` (default 30 seconds). Keep
it below the orchestrator's grace period (Kubernetes'
``terminationGracePeriodSeconds``, 30 by default) minus the flush timeout.
uvicorn is only imported here (the ``demo`` extra installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import socket
import sys
from collections.abc import Sequence

import structlog
from django.conf import settings
from uvicorn.server import Server
from uvicorn.supervisors import multiprocess

from chanx.drain import drain, run_shutdown_callbacks
from chanx.faults import seconds_setting
from chanx.startup_heap import GC_FREEZE_ENV, freeze_startup_heap, gc_freeze_wanted

__all__ = ["DRAIN_TIMEOUT_ENV", "DrainingServer", "drain_timeout", "main"]

_log = structlog.get_logger("chanx.serve")

#: Environment variable for the drain timeout (seconds).
DRAIN_TIMEOUT_ENV = "CHANX_DRAIN_TIMEOUT"
DEFAULT_DRAIN_TIMEOUT = 30.0
# uvicorn waits forever for leftover tasks unless told otherwise; after the
# drain, what is left gets this long.
_LEFTOVER_TIMEOUT = 5


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{text!r} is not a positive number of seconds")
    return value


def drain_timeout() -> float:
    """Seconds to drain: ``CHANX_DRAIN_TIMEOUT``, else ``CHANX["DRAIN_TIMEOUT"]``.

    Raises:
        ValueError: The environment variable is not a positive number.
    """
    raw = os.environ.get(DRAIN_TIMEOUT_ENV, "").strip()
    if raw:
        return _positive(raw)
    if not settings.configured:
        return DEFAULT_DRAIN_TIMEOUT
    value = seconds_setting("DRAIN_TIMEOUT")
    return DEFAULT_DRAIN_TIMEOUT if value is None else value


class DrainingServer(Server):
    """A uvicorn ``Server`` that freezes its startup heap and drains chanx
    connections before it stops."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does; then, the app being loaded, freeze the heap."""
        await super().startup(sockets=sockets)
        if self.should_exit:
            return
        if gc_freeze_wanted():
            _log.info("startup_heap_frozen", objects=freeze_startup_heap())
        else:
            _log.info("startup_heap_not_frozen", reason=f"{GC_FREEZE_ENV}=0")

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting, drain, let uvicorn finish, then flush telemetry."""
        # Closed first, so no new connection starts while the others drain.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        timeout = drain_timeout()
        await drain(timeout)
        await super().shutdown(sockets=sockets)
        # Blocking exports run in a thread; the loop is idle by now anyway.
        await asyncio.to_thread(run_shutdown_callbacks, timeout)
        _log.info("server_stopped")
        # Log lines are written when the loop next turns; uvicorn then ends
        # the process by re-raising the signal, which skips atexit. One turn
        # now, or this last line would be lost.
        await asyncio.sleep(0)


class _DrainingProcess(multiprocess.Process):
    """A ``--workers`` child of uvicorn's supervisor that runs a DrainingServer.

    The supervisor builds each child's server inside the child (a spawned
    process, which imports this module to unpickle its target), so patching
    names in the parent alone would leave workers on uvicorn's own Server.
    """

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m chanx.serve APP [uvicorn options] [--drain-timeout SECONDS]
    [--no-gc-freeze]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m chanx.serve", add_help=False)
    parser.add_argument("--drain-timeout", type=_positive, default=None)
    parser.add_argument("--no-gc-freeze", action="store_true")
    known, rest = parser.parse_known_args(args)
    # The environment also reaches worker processes (--workers).
    if known.drain_timeout is not None:
        os.environ[DRAIN_TIMEOUT_ENV] = str(known.drain_timeout)
    if known.no_gc_freeze:
        os.environ[GC_FREEZE_ENV] = "0"
    try:
        # A misspelt value stops the launch here, not in every worker.
        gc_freeze_wanted()
    except ValueError as exc:
        parser.error(str(exc))
    if "--timeout-graceful-shutdown" not in rest:
        rest += ["--timeout-graceful-shutdown", str(_LEFTOVER_TIMEOUT)]
    # uvicorn's CLI builds uvicorn.server.Server by name; swapping that name
    # keeps every uvicorn option and its config file handling as they are.
    # (``uvicorn.main`` the attribute is the click command, not the module.)
    cli = importlib.import_module("uvicorn.main")
    setattr(cli, "Server", DrainingServer)  # noqa: B010
    # With --workers N the supervisor starts the servers; see _DrainingProcess.
    setattr(multiprocess, "Process", _DrainingProcess)  # noqa: B010
    cli.main.main(args=rest, prog_name="python -m chanx.serve")


if __name__ == "__main__":  # pragma: no cover
    main()
