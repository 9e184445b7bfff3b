"""The rows of the *chanx overview* dashboard, one function per row."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import heatmap, prometheus, table, tempo
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import prometheus as prom_model
from grafana_foundation_sdk.models import tempo as tempo_model

from chanx_dashboards.panels import (
    PROMETHEUS,
    RATE,
    SEL,
    TEMPO,
    graph,
    quantile,
    rate,
    single,
)

__all__ = ["ROWS"]


def _overview() -> list[Builder[Any]]:
    return [
        single(
            "Active connections",
            "short",
            f"sum(chanx_connections_active{{{SEL}}})",
            "Open WebSockets whose handshake was accepted.",
        ),
        single(
            "Frames received",
            "reqps",
            f"sum(rate(chanx_messages_received_total{{{SEL}}}[{RATE}]))",
            "Client frames handled per second.",
        ),
        single(
            "Frame error ratio",
            "percentunit",
            f"sum(rate(chanx_message_errors_total{{{SEL}}}[{RATE}]))"
            f" / sum(rate(chanx_messages_received_total{{{SEL}}}[{RATE}]))",
            "Failed frames / received frames (alert ChanxMessageErrorRatioHigh: 5%).",
        ),
        single(
            "Handling p99",
            "s",
            quantile(0.99, "chanx_message_handling_duration_seconds", ""),
            "99th percentile of frame handling (SLO and alert: 500 ms).",
        ),
        single(
            "Targets up",
            "short",
            f'sum(up{{job="chanx", {SEL}}})',
            "chanx pods Prometheus scrapes successfully.",
        ),
        single(
            "ChannelFull in range",
            "short",
            "sum(increase(chanx_channel_layer_errors_total"
            f'{{{SEL}, error_type="ChannelFull"}}[$__range])) or vector(0)',
            "Channel-layer sends refused because a channel's queue was full "
            "(messages dropped). 0 when it never happened.",
        ),
    ]


def _connections() -> list[Builder[Any]]:
    return [
        graph(
            "Active connections by pod",
            "short",
            [(f"sum by (pod) (chanx_connections_active{{{SEL}}})", "{{pod}}")],
            "Open WebSockets per pod (a live gauge: dead workers drop out).",
        ),
        graph(
            "Handshakes opened and closed",
            "ops",
            [
                (
                    rate("chanx_connections_opened_total", "consumer"),
                    "opened {{consumer}}",
                ),
                (
                    rate("chanx_connections_closed_total", "consumer, code_class"),
                    "closed {{consumer}} {{code_class}}",
                ),
            ],
            "Accepted handshakes and closed sockets per second, by close code class.",
        ),
        graph(
            "Rejected handshakes by reason",
            "ops",
            [
                (
                    rate("chanx_connections_rejected_total", "consumer, reason"),
                    "{{consumer}} {{reason}}",
                )
            ],
            "Refused handshakes: 401/403 from authentication, 404, or error.",
        ),
        graph(
            "Handshake duration p95",
            "s",
            [
                (
                    quantile(0.95, "chanx_connect_duration_seconds", "consumer"),
                    "{{consumer}}",
                )
            ],
            "Handshake plus authentication time.",
        ),
    ]


def _messages() -> list[Builder[Any]]:
    handling = "chanx_message_handling_duration_seconds"
    return [
        graph(
            "Frames by action",
            "reqps",
            [
                (
                    rate("chanx_messages_received_total", "consumer, action, outcome"),
                    "in {{consumer}} {{action}} {{outcome}}",
                ),
                (
                    rate("chanx_messages_sent_total", "consumer, action"),
                    "out {{consumer}} {{action}}",
                ),
            ],
            "Frames received (by outcome) and sent per second.",
        ),
        graph(
            "Frame errors by type",
            "reqps",
            [
                (
                    rate("chanx_message_errors_total", "consumer, action, error_type"),
                    "{{consumer}} {{action}} {{error_type}}",
                )
            ],
            "decode and validation: bad client frames; handler: server bugs.",
        ),
        graph(
            "Handling latency",
            "s",
            [
                (quantile(0.5, handling, ""), "p50"),
                (quantile(0.95, handling, ""), "p95"),
                (quantile(0.99, handling, ""), "p99"),
            ],
            "Frame handling time quantiles (SLO: p99 under 500 ms).",
        ),
        _latency_heatmap(handling),
        graph(
            "Frame size p95",
            "bytes",
            [
                (
                    quantile(0.95, "chanx_message_size_bytes", "direction"),
                    "{{direction}}",
                )
            ],
            "UTF-8 size of frames in and out.",
            width=24,
        ),
    ]


def _latency_heatmap(metric: str) -> heatmap.Panel:
    expr = f"sum by (le) (increase({metric}_bucket{{{SEL}}}[{RATE}]))"
    target = (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format("{{le}}")
        .format(prom_model.PromQueryFormat.HEATMAP)
        .ref_id("A")
    )
    panel: heatmap.Panel = (
        heatmap.Panel()
        .title("Handling latency heatmap")
        .description(
            "Frames per latency bucket. chanx records no exemplars: open a slow "
            "frame's trace from its log line's trace_id (Traces row)."
        )
        .datasource(PROMETHEUS)
        .with_target(target)
        .calculate(False)
        .show_tooltip()
        .unit("s")
        .span(12)
        .height(8)
    )
    return panel


def _groups_and_events() -> list[Builder[Any]]:
    return [
        graph(
            "Group sends by template",
            "ops",
            [
                (
                    rate("chanx_group_sends_total", "group_template, outcome"),
                    "{{group_template}} {{outcome}}",
                ),
                (
                    rate("chanx_group_messages_delivered_total", "consumer"),
                    "delivered {{consumer}}",
                ),
            ],
            "Group sends (one per target group) and group messages relayed to clients.",
        ),
        graph(
            "Group send latency p95",
            "s",
            [(quantile(0.95, "chanx_group_send_duration_seconds", "kind"), "{{kind}}")],
            "Whole publish to the channel layer, by kind.",
        ),
        graph(
            "Events sent and handled",
            "ops",
            [
                (rate("chanx_events_sent_total", "handler"), "sent {{handler}}"),
                (
                    rate("chanx_events_received_total", "consumer, handler, outcome"),
                    "handled {{consumer}} {{handler}} {{outcome}}",
                ),
            ],
            "Channel events published and handled per second.",
        ),
        graph(
            "Event handling and delivery lag p95",
            "s",
            [
                (
                    quantile(0.95, "chanx_event_handling_duration_seconds", "handler"),
                    "handling {{handler}}",
                ),
                (
                    quantile(0.95, "chanx_event_delivery_lag_seconds", "handler"),
                    "lag {{handler}}",
                ),
            ],
            "Delivery lag compares two hosts' clocks: read it as a trend.",
        ),
        graph(
            "Channel layer errors",
            "ops",
            [
                (
                    rate("chanx_channel_layer_errors_total", "operation, error_type"),
                    "{{operation}} {{error_type}}",
                )
            ],
            "Failed layer operations by exception class (ChannelFull: queue full). "
            "Empty when none happened.",
            width=24,
        ),
    ]


def _per_pod() -> list[Builder[Any]]:
    return [
        graph(
            "Frames received by pod",
            "reqps",
            [(rate("chanx_messages_received_total", "pod"), "{{pod}}")],
            "Client frames per second per pod: uneven load shows here.",
            width=8,
        ),
        graph(
            "Handling p99 by pod",
            "s",
            [
                (
                    quantile(0.99, "chanx_message_handling_duration_seconds", "pod"),
                    "{{pod}}",
                )
            ],
            "A single slow pod (CPU, blocked event loop) stands out here.",
            width=8,
        ),
        graph(
            "Readiness checks by pod",
            "ops",
            [
                (
                    rate("chanx_readiness_checks_total", "pod, outcome"),
                    "{{pod}} {{outcome}}",
                )
            ],
            "/readyz answers per second by outcome (alert ChanxNotReady).",
            width=8,
        ),
        _build_info(),
    ]


def _build_info() -> table.Panel:
    target = (
        prometheus.Dataquery()
        .expr(f"max by (pod, version, channel_layer) (chanx_build_info{{{SEL}}})")
        .format(prom_model.PromQueryFormat.TABLE)
        .instant()
        .ref_id("A")
    )
    panel: table.Panel = (
        table.Panel()
        .title("Build info")
        .show_header(True)
        .description("chanx version and channel layer per pod.")
        .datasource(PROMETHEUS)
        .with_target(target)
        .span(24)
        .height(6)
    )
    return panel


def _traces() -> list[Builder[Any]]:
    errors = (
        tempo.TempoQuery()
        .query_type(tempo_model.TempoQueryType.TRACEQL)
        .query('{ span.messaging.system = "chanx" && status = error }')
        .limit(20)
        .ref_id("A")
    )
    by_id = (
        tempo.TempoQuery()
        .query_type(tempo_model.TempoQueryType.TRACEQL)
        .query("$trace_id")
        .ref_id("A")
    )
    return [
        table.Panel()
        .title("Recent failed chanx spans")
        .show_header(True)
        .description(
            "Tempo search (TraceQL) for chanx spans with status error; each row "
            "links to its trace. Needs the Tempo datasource variable."
        )
        .datasource(TEMPO)
        .with_target(errors)
        .span(12)
        .height(8),
        dash.Panel()
        .type("traces")
        .options({})
        .title("Trace by id")
        .description(
            "Paste a trace_id from a chanx log line into the trace_id variable."
        )
        .datasource(TEMPO)
        .with_target(by_id)
        .span(12)
        .height(8),
    ]


ROWS = (
    ("Overview", _overview),
    ("Connections", _connections),
    ("Messages", _messages),
    ("Groups and events", _groups_and_events),
    ("Per pod", _per_pod),
    ("Traces (Tempo)", _traces),
)
