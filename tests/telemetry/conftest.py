"""Fixtures for telemetry tests: hooks installed for one test, an in-memory span pipeline."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from chanx.hooks import ConsumerHooks, get_hooks, install_hooks


@pytest.fixture
def use_hooks() -> Iterator[Callable[[ConsumerHooks], None]]:
    """Call ``use_hooks(hooks)`` to make ``hooks`` the default for this test."""
    previous = get_hooks()

    def use(hooks: ConsumerHooks) -> None:
        install_hooks(hooks)

    yield use
    install_hooks(previous)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Keeps every finished span of the test."""
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """An SDK provider exporting each span to ``exporter`` as it ends."""
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()
