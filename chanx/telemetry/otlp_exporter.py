"""The official OTLP/HTTP span exporter with chanx's wire-format encoder.

:class:`FastOTLPSpanExporter` is ``opentelemetry-exporter-otlp-proto-http``'s
``OTLPSpanExporter`` (endpoint, headers, timeout, compression, certificates,
retries, its own metrics: all from its constructor and ``OTEL_*`` variables)
whose ``export`` serializes the batch with
:func:`chanx.telemetry.otlp_encoding.encode_spans` instead of building
protobuf objects. The request it sends parses to the same message.

A batch the fast encoder cannot write (an attribute value of another type,
an int beyond int64...) is encoded by the official encoder instead, so
nothing is dropped or altered; the first such batch is logged
(``otlp_encoding_fallback``) and each is counted in
:attr:`~FastOTLPSpanExporter.fallbacks`. When the installed exporter lacks the
internals ``export`` needs (another version), the whole official ``export``
is used, logged when the exporter is built
(``otlp_fast_encoder_unavailable``).

For a plain ``http://`` endpoint where ``requests`` has nothing to add (no
proxy, netrc login, session or credential provider: see
:func:`~chanx.telemetry.otlp_transport.plain_http_applies`) the batches are
posted by :class:`~chanx.telemetry.otlp_transport.PlainHTTPTransport`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any, cast

import structlog
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as official_encode_spans,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

__all__ = ["PAUSE_ENV", "FastOTLPSpanExporter", "release_gil"]

#: Environment variable: spans encoded between two releases of the GIL
#: (unset or 0: none; see :func:`release_gil`).
PAUSE_ENV = "CHANX_OTLP_ENCODE_PAUSE"

_log = structlog.get_logger("chanx.telemetry")
# The official exporter's own logger: its messages keep their usual source.
_official_log = logging.getLogger(OTLPSpanExporter.__module__)

try:
    from opentelemetry.exporter.otlp.proto.http._common import (
        RequestPayloadTooLargeError,
        _is_request_too_large,
    )
    from opentelemetry.semconv.attributes.http_attributes import (
        HTTP_RESPONSE_STATUS_CODE,
    )

    from chanx.telemetry.otlp_encoding import encode_spans
    from chanx.telemetry.span_records import SpanRecord, SpanRecords
except Exception as exc:  # pragma: no cover - depends on installed versions
    _UNAVAILABLE: str | None = f"{type(exc).__name__}: {exc}"
else:
    _UNAVAILABLE = None

try:
    from chanx.telemetry.otlp_transport import PlainHTTPTransport, plain_http_applies
except ImportError:  # pragma: no cover - an exporter without pluggable transports
    PlainHTTPTransport = None  # type: ignore[assignment,misc]


def release_gil() -> None:
    """Let another thread take the GIL, if one is waiting for it.

    The batch processor's thread encodes a batch of spans (512 by default,
    several milliseconds) in pure Python. Held throughout, the GIL keeps the
    event loop waiting for up to the switch interval each time it wants it
    back. With :data:`PAUSE_ENV` set, the exporter calls this every that
    many spans: under another processor, p99 a quarter lower and throughput
    about 6% lower at saturation (``benchmarks/HISTORY.md``, fourteenth
    round), so it is opt-in. chanx's own processor has the spans encoded as
    they end (:mod:`chanx.telemetry.span_records`): only spans the fast
    encoder refused are left to encode here. ``time.sleep`` releases the
    GIL even for zero seconds.
    """
    time.sleep(0)


def _pause_every() -> int:
    """:data:`PAUSE_ENV` as a number of spans; 0 when unset or not one."""
    raw = os.environ.get(PAUSE_ENV, "").strip()
    if not raw:
        return 0
    try:
        every = int(raw)
    except ValueError:
        every = -1
    if every < 0:
        # Telemetry settings never stop the app: say so, encode as before.
        _log.warning("otlp_encode_pause_invalid", value=raw, expected="spans >= 0")
        return 0
    return every


# ``session`` is the official constructor's eighth positional parameter.
_SESSION_POSITION = 7

# What export() uses of the official exporter besides its public API.
_INTERNALS = ("_shutdown", "_metrics", "_client", "_max_request_size")


def _missing_internals(exporter: OTLPSpanExporter) -> str | None:
    if _UNAVAILABLE is not None:
        return _UNAVAILABLE
    missing = [name for name in _INTERNALS if not hasattr(exporter, name)]
    if missing:
        return "missing " + ", ".join(missing)
    if not hasattr(exporter._metrics, "export_operation"):
        return "missing _metrics.export_operation"
    if not hasattr(exporter._client, "export"):
        return "missing _client.export"
    return None


class FastOTLPSpanExporter(OTLPSpanExporter):
    """OTLP http/protobuf span exporter encoding spans straight to wire format.

    Takes the official ``OTLPSpanExporter``'s arguments and environment.

    Attributes:
        fast: Whether ``export`` uses the fast encoder (False when the
            official exporter's internals are not the expected ones).
        fallbacks: Batches the fast encoder left to the official one.
        plain_http: Whether batches are posted without ``requests``
            (:mod:`chanx.telemetry.otlp_transport`).
        span_records: Encodes spans as they end, for a processor that queues
            the records instead (chanx's, :mod:`chanx.telemetry.span_records`);
            ``export`` takes them mixed with spans. None when not :attr:`fast`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fallbacks = 0
        reason = _missing_internals(self)
        self.fast = reason is None
        self.span_records: SpanRecords | None = None
        if reason is not None:
            _log.warning("otlp_fast_encoder_unavailable", reason=reason)
        else:
            self.span_records = SpanRecords()
        self.plain_http = self._post_plainly(args, kwargs)
        #: Spans encoded between two GIL releases (0: the batch in one go).
        self.pause_every = _pause_every()

    def _post_plainly(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Swap ``requests`` for a plain ``http.client`` transport when it
        has nothing to add (see :func:`plain_http_applies`)."""
        if PlainHTTPTransport is None or "_transport" in kwargs:
            return False
        # A session of the user's may carry auth or adapters: keep it.
        if len(args) > _SESSION_POSITION or kwargs.get("session") is not None:
            return False
        client = getattr(self, "_client", None)
        official = getattr(client, "_transport", None)
        endpoint = getattr(self, "_endpoint", None)
        if official is None or not isinstance(endpoint, str):
            return False
        if not plain_http_applies(endpoint):
            return False
        client._transport = PlainHTTPTransport()  # type: ignore[union-attr]
        official.close()
        return True

    def export(self, spans: Sequence[ReadableSpan | SpanRecord]) -> SpanExportResult:
        """Send ``spans`` as one OTLP request, as the official exporter does.

        ``spans`` may hold records :attr:`span_records` made of spans that
        ended: they are sent as the spans would have been.
        """
        if not self.fast:
            # Without the fast encoder there is no span_records: only spans.
            return super().export(cast(Sequence[ReadableSpan], spans))
        if self._shutdown:
            _official_log.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        with self._metrics.export_operation(len(spans)) as result:
            try:
                data = self.encode(spans)
            except Exception as error:
                _official_log.error("Failed to encode span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            if _is_request_too_large(data, self._max_request_size):
                result.error = self._too_large(len(data))
                return SpanExportResult.FAILURE
            sent = self._client.export(data)
            if not sent.success:
                result.error = sent.error
                result.error_attrs = (
                    None
                    if sent.status_code is None
                    else {HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                )
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def encode(self, spans: Sequence[ReadableSpan | SpanRecord]) -> bytes:
        """The serialized ``ExportTraceServiceRequest`` for ``spans``.

        Falls back to the official encoder for a batch the fast one cannot
        encode (whatever the reason: it must never lose or alter spans); the
        spans already encoded as records keep their bytes. The fast one
        releases the GIL every :attr:`pause_every` spans, if set
        (:func:`release_gil`).
        """
        origin = None if self.span_records is None else self.span_records.origin
        try:
            if self.pause_every:
                return encode_spans(spans, release_gil, self.pause_every, origin)
            return encode_spans(spans, origin=origin)
        except Exception as exc:
            self.fallbacks += 1
            if self.fallbacks == 1:
                _log.info("otlp_encoding_fallback", error_type=type(exc).__name__)
        records = [item for item in spans if type(item) is tuple]
        others: Any = [item for item in spans if type(item) is not tuple]
        data: bytes = official_encode_spans(others).SerializePartialToString()
        if records:
            # Two requests' bytes concatenated parse as one request holding
            # both lists of resource spans (protobuf merges repeated fields).
            data = encode_spans(records, origin=origin) + data
        return data

    def _too_large(self, size: int) -> Exception:
        _official_log.warning(
            "Dropping span batch: serialized size %d bytes exceeds "
            "max_request_size %d bytes.",
            size,
            self._max_request_size,
        )
        return RequestPayloadTooLargeError(
            f"Serialized span request size {size} bytes exceeds "
            f"max_request_size {self._max_request_size} bytes."
        )
