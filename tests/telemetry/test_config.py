"""CHANX["TELEMETRY"] parsing, group templates, and what the app installs."""

from __future__ import annotations

import ipaddress

import pytest
from django.test import override_settings
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from chanx.hooks import NoopHooks, get_hooks
from chanx.telemetry.composite import TelemetryHooks
from chanx.telemetry.config import TelemetryConfig, telemetry_config
from chanx.telemetry.fast_spans import ChanxSpan
from chanx.telemetry.install import build_hooks, install
from chanx.telemetry.naming import BoundedNames, default_group_template
from chanx.telemetry.tracing import TracingHooks


def shout(group: str) -> str:
    return group.upper()


def test_defaults_turn_every_signal_on() -> None:
    config = TelemetryConfig.from_setting({})
    assert (config.enabled, config.logs, config.traces, config.metrics) == (
        True,
        True,
        True,
        True,
    )
    assert config.process_span == "parent"
    assert "authorization" in config.redact_keys


def test_disabled_mode_and_per_signal_switches() -> None:
    assert TelemetryConfig.from_setting("disabled").enabled is False
    config = TelemetryConfig.from_setting({"TRACES": False, "LOGS": False})
    assert (config.traces, config.logs, config.metrics) == (False, False, True)


def test_fast_spans_setting_reaches_the_tracing_part() -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    for setting, fast in (({}, True), ({"FAST_SPANS": False}, False)):
        hooks = build_hooks(
            TelemetryConfig.from_setting(setting), tracer_provider=provider
        )
        assert isinstance(hooks, TelemetryHooks)
        tracing = dict(hooks.parts)["traces"]
        assert isinstance(tracing, TracingHooks)
        span = tracing.spans.start("probe", Context(), SpanKind.INTERNAL, {"k": "v"})
        assert isinstance(span, ChanxSpan) is fast
        assert span.is_recording()
    provider.shutdown()


def test_dotted_path_group_template_and_networks() -> None:
    config = TelemetryConfig.from_setting(
        {
            "GROUP_TEMPLATE": "tests.telemetry.test_config.shout",
            "METRICS_ALLOWED_NETWORKS": ["10.0.0.0/8", "127.0.0.1"],
        }
    )
    assert config.group_template("room_1") == "ROOM_1"
    assert config.metrics_allowed_networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1/32"),
    )


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ({"TRACE": False}, "Unknown CHANX"),
        ({"PROCESS_SPAN": "child"}, '"parent" or "link"'),
        ({"GROUP_TEMPLATE": 42}, "callable or a dotted path"),
        (["LOGS"], 'a dict or "disabled"'),
    ],
)
def test_bad_settings_fail_with_a_hint(value: object, hint: str) -> None:
    with pytest.raises(ValueError, match=hint):
        TelemetryConfig.from_setting(value)  # type: ignore[arg-type]


def test_default_group_template_strips_ids_only() -> None:
    assert default_group_template("room_42") == "room_{id}"
    assert default_group_template("group_chat_7") == "group_chat_{id}"
    assert default_group_template("user.9f86d081884c7d659a2feaa0c55ad015") == (
        "user.{id}"
    )
    assert default_group_template("announcements") == "announcements"


def test_bounded_names_cap_distinct_values() -> None:
    bound = BoundedNames(limit=3)
    names = [bound(f"room_{name}") for name in "abcdef"]
    assert names == ["room_a", "room_b", "room_c", "other", "other", "other"]
    assert bound("room_a") == "room_a"


def test_build_hooks_has_one_part_per_enabled_signal() -> None:
    hooks = build_hooks(TelemetryConfig(logs=False))
    assert isinstance(hooks, TelemetryHooks)
    assert [signal for signal, _ in hooks.parts] == ["traces", "metrics"]
    assert build_hooks(TelemetryConfig(enabled=False)) is None
    assert build_hooks(TelemetryConfig(logs=False, traces=False, metrics=False)) is None


def test_the_app_installs_telemetry_and_follows_override_settings() -> None:
    # tests/settings.py lists chanx.telemetry in INSTALLED_APPS.
    # The composite isolates each signal's failures itself, so it is
    # installed as is rather than wrapped in SafeHooks a second time.
    installed = get_hooks()
    assert isinstance(installed, TelemetryHooks)
    with override_settings(CHANX={"TELEMETRY": "disabled"}):
        assert telemetry_config().enabled is False
        assert isinstance(get_hooks(), NoopHooks)
    assert isinstance(get_hooks(), TelemetryHooks)


def test_other_chanx_overrides_keep_hooks_installed_by_hand() -> None:
    previous = get_hooks()
    mine = install(TelemetryConfig(traces=False, logs=False))
    try:
        with override_settings(CHANX={"SEND_COMPLETION": False}):
            assert get_hooks() is mine
    finally:
        install(telemetry_config())
    assert type(get_hooks()) is type(previous)
