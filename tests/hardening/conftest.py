"""Fixtures for the hardening tests: the test router and real metrics hooks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from chanx.hooks import get_hooks, install_hooks
from chanx.telemetry.config import TelemetryConfig
from chanx.telemetry.metric_hooks import MetricsHooks
from chanx.telemetry.metrics import get_metrics
from tests.hardening.app import router


@pytest.fixture
def chanx_router() -> Any:
    return router


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    """A fresh registry recording every consumer's metrics for one test."""
    registry = CollectorRegistry()
    previous = get_hooks()
    install_hooks(MetricsHooks(get_metrics(registry), TelemetryConfig()))
    yield registry
    install_hooks(previous)


@pytest.fixture
def errors(registry: CollectorRegistry) -> Callable[[str], float]:
    """``errors(error_type)``: ``chanx_message_errors_total`` summed over labels."""

    def read(error_type: str) -> float:
        return sum(
            sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name == "chanx_message_errors_total"
            and sample.labels["error_type"] == error_type
        )

    return read


@pytest.fixture
def total_errors(registry: CollectorRegistry) -> Callable[[], float]:
    """``chanx_message_errors_total`` summed over every label."""

    def read() -> float:
        return sum(
            sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name == "chanx_message_errors_total"
        )

    return read
