"""Fixtures for telemetry tests: hooks installed for one test, an in-memory span pipeline."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from chanx.hooks import ConsumerHooks, get_hooks, install_hooks

if TYPE_CHECKING:
    from tests.telemetry.test_otlp_exporter import Receiver


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


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put structlog and every stdlib logger back as they were."""
    was_configured, config = structlog.is_configured(), structlog.get_config()
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    saved = {
        name: (list(lg.handlers), lg.level, lg.propagate, lg.disabled)
        for name, lg in logging.root.manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    yield
    structlog.reset_defaults()
    if was_configured:
        structlog.configure(**config)
    for handler in root.handlers[:]:
        if handler not in root_handlers:
            root.removeHandler(handler)
    root.setLevel(root_level)
    for name, lg in list(logging.root.manager.loggerDict.items()):
        if isinstance(lg, logging.Logger):
            handlers, level, propagate, disabled = saved.get(
                name, ([], logging.NOTSET, True, False)
            )
            lg.handlers, lg.propagate, lg.disabled = handlers, propagate, disabled
            lg.setLevel(level)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback OTLP/HTTP collector keeping (and decoding) what it receives."""
    from tests.telemetry.test_otlp_exporter import Receiver

    receiver = Receiver()
    yield receiver
    receiver.close()
