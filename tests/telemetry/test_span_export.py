"""chanx.telemetry.span_export: the bounded batch processor's direct enqueue."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from chanx.telemetry.sdk import create_tracer_provider
from chanx.telemetry.span_export import BoundedSpanProcessor


class Kept(SpanExporter):
    """Keeps the names of the spans it exports."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.names += [span.name for span in spans]
        return SpanExportResult.SUCCESS


def test_spans_are_queued_without_a_fork_check_per_span() -> None:
    exporter = Kept()
    provider = create_tracer_provider(exporter=exporter, shutdown_on_exit=False)
    [processor] = provider._active_span_processor._span_processors
    assert isinstance(processor, BoundedSpanProcessor)
    # The SDK's emit() asks os.getpid() per span; chanx appends directly.
    assert processor._enqueue == processor._enqueue_directly
    try:
        for name in ("a", "b", "c"):
            provider.get_tracer("t").start_span(name).end()
        provider.force_flush()
    finally:
        provider.shutdown()
    assert exporter.names == ["a", "b", "c"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_a_forked_child_exports_its_own_spans_only() -> None:
    # Without the per-span pid check, the child relies on the SDK's at-fork
    # hook: a fresh queue (the parent's waiting spans are the parent's) and
    # a worker thread of its own.
    exporter = Kept()
    provider = create_tracer_provider(exporter=exporter, shutdown_on_exit=False)
    tracer = provider.get_tracer("t")
    tracer.start_span("parent's").end()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it exported, then leave at once
        os.close(read_end)
        try:
            tracer.start_span("child's").end()
            provider.force_flush()
            os.write(write_end, ",".join(exporter.names).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            exported_in_child = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        provider.force_flush()
    finally:
        provider.shutdown()
    assert os.waitstatus_to_exitcode(status) == 0
    assert exported_in_child == "child's"
    assert exporter.names == ["parent's"]
