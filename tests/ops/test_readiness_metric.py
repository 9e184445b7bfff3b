"""``chanx_readiness_checks_total``: every /readyz answer is counted, failsafe."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from chanx.hooks import get_hooks, install_hooks
from chanx.telemetry.config import telemetry_config
from chanx.telemetry.health import readiness
from chanx.telemetry.install import install
from chanx.telemetry.metrics import get_metrics
from tests.telemetry.test_health import BrokenLayer, HangingLayer, use_layer

COUNTER = "chanx_readiness_checks_total"


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    """Telemetry installed on a fresh registry for one test, then restored."""
    previous = get_hooks()
    reg = CollectorRegistry()
    install(registry=reg)
    yield reg
    install_hooks(previous)


def count(registry: CollectorRegistry, outcome: str) -> float:
    return registry.get_sample_value(COUNTER, {"outcome": outcome}) or 0.0


async def test_each_answer_is_counted_by_outcome(
    registry: CollectorRegistry, settings: Any
) -> None:
    assert (await readiness())[0] == 200
    assert (await readiness())[0] == 200
    use_layer(settings, HangingLayer)
    install(registry=registry)
    assert (await asyncio.wait_for(readiness(), 5))[0] == 503
    use_layer(settings, BrokenLayer)
    install(registry=registry)
    assert (await readiness())[0] == 503
    assert count(registry, "ok") == 2
    assert count(registry, "channel_layer_timeout") == 1
    assert count(registry, "channel_layer_error") == 1


async def test_no_series_before_the_first_check(registry: CollectorRegistry) -> None:
    # Labelled series appear only with their first sample: the alert rules
    # rely on that (see deploy/prometheus/rules.yml).
    assert registry.get_sample_value(COUNTER, {"outcome": "ok"}) is None
    await readiness()
    assert count(registry, "ok") == 1


async def test_nothing_counted_with_metrics_off() -> None:
    previous = get_hooks()
    reg = CollectorRegistry()
    config = dataclasses.replace(telemetry_config(), metrics=False)
    try:
        install(config, registry=reg)
        assert (await readiness())[0] == 200
    finally:
        install_hooks(previous)
    assert reg.get_sample_value(COUNTER, {"outcome": "ok"}) is None


async def test_a_broken_counter_never_costs_the_probe(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*labels: str) -> Any:
        raise RuntimeError("metrics backend broke")

    monkeypatch.setattr(get_metrics(registry).readiness_checks, "labels", explode)
    with capture_logs() as logs:
        assert await readiness() == (200, {"status": "ok"})
    [event] = [e for e in logs if e["event"] == "telemetry_hook_failed"]
    assert (event["signal"], event["hook"]) == ("metrics", "readiness")
