"""Structured logs: JSON lines (or a console view), redacted, with trace ids.

:func:`configure_logging` sets up structlog and the stdlib root logger, so
chanx's events and stdlib records (Django, uvicorn, OpenTelemetry) share one
rendering, redaction and the current trace ids; :func:`logging_config` is the
stdlib half as a Django ``LOGGING`` dict::

    LOGGING = logging_config()  # settings.py
    configure_logging()

:class:`LogContextHooks` binds ``connection_id``, ``consumer``, ``route``,
``user_id`` and the ``action``/``handler`` being handled as structlog context
variables, so every line logged while a connection's code runs carries them,
the application's own log lines included.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from chanx.hooks import ConnectionInfo, NoopHooks, Observation
from chanx.telemetry.config import DEFAULTS, TelemetryConfig
from chanx.telemetry.line_logger import line_logger_class
from chanx.telemetry.line_sink import LineHandler, LineSink, sink_for
from chanx.telemetry.log_chain import EventChain, TraceIds, context_var
from chanx.telemetry.redaction import REDACTED, EventProcessor, redact
from chanx.telemetry.rendering import IsoTimestamp, json_renderer

__all__ = [
    "FORMAT_ENV",
    "REDACTED",
    "EventProcessor",
    "LogContextHooks",
    "add_trace_context",
    "configure_logging",
    "logging_config",
    "make_formatter",
    "redact",
]

#: Environment variable read when ``json`` is ``None``: ``json`` or ``console``.
FORMAT_ENV = "CHANX_LOG_FORMAT"

# The name of the handler we install: configure_logging replaces only its own.
_HANDLER = "chanx"
# Loggers servers give handlers of their own; logging_config routes them
# through ours, so uvicorn's access lines (path and query) are redacted too.
_SERVER_LOGGERS = ("django", "django.server", "uvicorn.error", "uvicorn.access")
# Logger names are module constants; the cap only guards against odd callers.
_MAX_SHARED_LOGGERS = 256
# Trace context ------------------------------------------------------------------

_trace_ids = TraceIds()


def add_trace_context(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    """Add ``trace_id`` (32 hex) and ``span_id`` (16 hex) of the active span.

    Adds nothing when no valid span is active or OpenTelemetry is not
    installed, so lines can be joined with their trace in the backend.
    """
    _trace_ids.add(event_dict)
    return event_dict


# Configuration ------------------------------------------------------------------


def _wants_json(json: bool | None) -> bool:
    if json is not None:
        return json
    value = os.environ.get(FORMAT_ENV, "json").strip().lower() or "json"
    if value not in ("json", "console"):
        raise ValueError(f'{FORMAT_ENV} must be "json" or "console", not {value!r}')
    return value == "json"


def _redact_keys(keys: Iterable[str] | None) -> tuple[str, ...]:
    if keys is not None:
        return tuple(keys)
    from django.conf import settings

    # Not yet configured while settings.py itself runs: use the defaults.
    if settings.configured:
        from chanx.telemetry.config import telemetry_config

        return telemetry_config().redact_keys
    return tuple(DEFAULTS["REDACT_KEYS"])


def _level(level: str | int) -> str | int:
    return level.upper() if isinstance(level, str) else level


def _stdlib_processors(keys: Iterable[str]) -> list[Processor]:
    # The pre-chain for stdlib records; structlog events get the same steps
    # from EventChain, without the positional arguments (they have none).
    # format_exc_info comes before redact so tracebacks are scrubbed too.
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        IsoTimestamp(),
        add_trace_context,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact(keys),
    ]


def make_formatter(
    json: bool | None = None, redact_keys: Iterable[str] | None = None
) -> structlog.stdlib.ProcessorFormatter:
    """The stdlib formatter rendering records as chanx logs (a dictConfig ``"()"``).

    Args and errors are those of :func:`configure_logging`.
    """
    renderer = _renderer(json)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_stdlib_processors(_redact_keys(redact_keys)),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )


class _NamedLineLogger:
    """A structlog logger writing through a :class:`LineSink`, with a name.

    Lines up to ``info`` are written when the loop turns; warnings and
    worse at once (see :mod:`chanx.telemetry.line_sink`).
    """

    __slots__ = (
        "_sink",
        "critical",
        "debug",
        "err",
        "error",
        "exception",
        "failure",
        "fatal",
        "info",
        "log",
        "msg",
        "name",
        "warn",
        "warning",
    )

    def __init__(self, name: str, sink: LineSink) -> None:
        self.name = name
        self._sink = sink
        # The sink's own methods, not methods forwarding to them: a call
        # less per line, and a line is written on every frame.
        self.msg = self.log = self.debug = self.info = sink.write_soon
        self.warning = self.warn = self.error = self.err = sink.write_now
        self.critical = self.fatal = self.failure = self.exception = sink.write_now

    @property
    def _file(self) -> TextIO:
        return self._sink.file


class _LoggerFactory:
    """Loggers writing to ``stream``, or to the ``sys.stdout`` of the moment.

    One logger per name and file, shared: every connection binds its own
    logger (``_log.bind(...)``), and a fresh writer each time would cost
    each connection about half a KiB and a few allocations. All loggers of
    a file share its :class:`LineSink`, which keeps their lines in order.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._loggers: dict[tuple[str, int], _NamedLineLogger] = {}

    def __call__(self, *args: Any) -> _NamedLineLogger:
        name = args[0] if args and isinstance(args[0], str) else "root"
        file = self._stream or sys.stdout
        key = (name, id(file))
        logger = self._loggers.get(key)
        # The identity check: a new file may reuse a closed one's id.
        if logger is None or logger._file is not file:
            logger = _NamedLineLogger(name, sink_for(file))
            if len(self._loggers) < _MAX_SHARED_LOGGERS:
                self._loggers[key] = logger
        return logger


def _renderer(json: bool | None) -> Processor:
    if _wants_json(json):
        return json_renderer
    # The exception is already text (format_exc_info, then redacted).
    return structlog.dev.ConsoleRenderer(
        exception_formatter=structlog.dev.plain_traceback
    )


def configure_logging(
    *,
    json: bool | None = None,
    level: str | int = "INFO",
    redact_keys: Iterable[str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Send structlog and stdlib logs to stdout, rendered and redacted alike.

    A JSON line holds ``event``, ``level``, ``timestamp`` (ISO 8601, UTC),
    ``logger``, the bound context, ``trace_id``/``span_id`` inside a span and
    ``exception`` (the traceback as text). structlog events are rendered by
    structlog itself (no stdlib round trip: a line is on every frame's
    path); stdlib records go through :func:`make_formatter` on a root
    handler, replacing the previous chanx handler and keeping others.
    Loggers are not cached, so calling again applies at once, also to
    module-level ``get_logger()`` proxies.

    Args:
        json: JSON lines if true, structlog's console view if false; ``None``
            reads :data:`FORMAT_ENV` (``json``, the default, or ``console``).
        level: The least level written (structlog, root logger and handler).
        redact_keys: Secret key fragments; ``None`` takes
            ``CHANX["TELEMETRY"]["REDACT_KEYS"]`` when Django settings are
            loaded, else the defaults of :mod:`chanx.telemetry.config`.
        stream: Where lines go; default: ``sys.stdout`` at the time a logger
            is created.

    Raises:
        ValueError: :data:`FORMAT_ENV` is neither ``json`` nor ``console``.
    """
    keys = _redact_keys(redact_keys)
    numeric = logging.getLevelName(_level(level)) if isinstance(level, str) else level
    structlog.configure(
        # The steps of _stdlib_processors as one call (the same event dict):
        # a structlog line is on every frame's path.
        processors=[EventChain(redact(keys)), _renderer(json)],
        logger_factory=_LoggerFactory(stream),
        # Lines below the level cost a no-op method call; the others run the
        # two processors directly (chanx.telemetry.line_logger).
        wrapper_class=line_logger_class(numeric),
        context_class=dict,
        # Not cached, so reconfiguring (and structlog.testing) takes effect
        # on loggers that modules created at import.
        cache_logger_on_first_use=False,
    )
    handler = LineHandler(stream or sys.stdout)
    handler.set_name(_HANDLER)
    # On the handler too: records propagated from a logger with a level of
    # its own (Django sets "django" to INFO) skip the root logger's level.
    handler.setLevel(_level(level))
    handler.setFormatter(make_formatter(json=_wants_json(json), redact_keys=keys))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_level(level))


def logging_config(
    *, json: bool | None = None, level: str | int = "INFO"
) -> dict[str, Any]:
    """A Django ``LOGGING`` dict rendering stdlib records as chanx logs do.

    The root, ``django``, ``django.server``, ``uvicorn.error`` and
    ``uvicorn.access`` loggers write through :func:`make_formatter` to stdout.
    Django applies ``LOGGING`` when the ASGI app is imported, after uvicorn
    set up its logging, so these replace uvicorn's handlers. Call
    :func:`configure_logging` as well, for structlog.

    Args:
        json: As for :func:`configure_logging`, resolved when Django applies it.
        level: The level of every logger and the handler configured here.
    """
    level = _level(level)
    server_logger = {"handlers": [_HANDLER], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {_HANDLER: {"()": f"{__name__}.make_formatter", "json": json}},
        "handlers": {
            _HANDLER: {
                "class": f"{LineHandler.__module__}.LineHandler",
                "stream": "ext://sys.stdout",
                "formatter": _HANDLER,
                "level": level,
            }
        },
        "root": {"handlers": [_HANDLER], "level": level},
        "loggers": {name: dict(server_logger) for name in _SERVER_LOGGERS},
    }


# Connection context -------------------------------------------------------------


class _Bound:
    """Binds one key until finished (same task, so same context).

    The context variable is structlog's own (``bind_contextvars`` sets the
    same one), looked up once: binding is a ``set``, restoring a ``reset``.
    """

    __slots__ = ("_token", "_var")

    def __init__(self, var: contextvars.ContextVar[Any], value: Any) -> None:
        self._var = var
        self._token: contextvars.Token[Any] | None = var.set(value)

    def finish(
        self,
        outcome: str,
        error_type: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        try:
            self._var.reset(token)
        except (ValueError, RuntimeError):
            # Finished in another context: drop the key rather than leave a
            # stale action on later lines (what unbind_contextvars does).
            self._var.set(Ellipsis)


class _Handshake:
    """Binds ``user_id`` once the handshake is accepted."""

    __slots__ = ("_conn", "_log_user_id")

    def __init__(self, conn: ConnectionInfo, log_user_id: bool) -> None:
        self._conn = conn
        self._log_user_id = log_user_id

    def finish(
        self,
        outcome: str,
        error_type: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        if outcome == "accepted" and self._log_user_id and self._conn.user_id:
            structlog.contextvars.bind_contextvars(user_id=self._conn.user_id)


class LogContextHooks(NoopHooks):
    """Consumer hooks that bind log context; they log nothing themselves.

    The connection's ``connection_id``, ``consumer`` and ``route`` (and
    ``user_id`` after an accepted handshake, if ``config.log_user_id``) stay
    bound for the rest of the connection's task, which ends with it; each
    connection runs in its own task, so nothing leaks between connections.
    (Not unbound in ``connection_closed``: the core logs the close after it.)
    ``action`` (client frames, group messages) or ``handler`` (events) is
    bound while that step is handled and restored when it finishes. The
    other hooks are the inherited no-ops.

    Args:
        config: The telemetry settings (only ``log_user_id`` is read).
    """

    def __init__(self, config: TelemetryConfig) -> None:
        self._log_user_id = config.log_user_id
        self._action = context_var("action")
        self._handler = context_var("handler")

    def connection_started(
        self, conn: ConnectionInfo, scope: Mapping[str, Any]
    ) -> Observation:
        structlog.contextvars.bind_contextvars(
            connection_id=conn.connection_id, consumer=conn.consumer, route=conn.route
        )
        return _Handshake(conn, self._log_user_id)

    def message_received(
        self, conn: ConnectionInfo, action: str, size: int, carrier: Mapping[str, str]
    ) -> Observation:
        return _Bound(self._action, action)

    def deliver(
        self, conn: ConnectionInfo, kind: str, name: str, carrier: Mapping[str, str]
    ) -> Observation:
        if kind == "event":
            return _Bound(self._handler, name)
        return _Bound(self._action, name)
