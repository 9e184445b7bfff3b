"""Every shipped query parses and only names series and labels chanx really has.

The reference is the app itself: the metrics :func:`chanx.telemetry.metrics.get_metrics`
registers, expanded to the series Prometheus stores (``_total`` for counters,
``_bucket``/``_sum``/``_count`` for histograms), plus what the scrape adds:
``up`` and the target labels ``job``, ``instance``, ``namespace``, ``pod``
(the last two from the Prometheus Operator's Kubernetes discovery).
"""

from __future__ import annotations

from collections.abc import Iterator

import promql_parser
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from chanx.telemetry.metrics import get_metrics
from tests.ops.observe_queries import (
    Query,
    alert_queries,
    load_dashboard,
    panel_queries,
    substitute,
    variable_labels,
    variable_selectors,
)

TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod"})
# Series Prometheus itself writes for every scrape target.
SCRAPE_SERIES: dict[str, frozenset[str]] = {"up": frozenset()}
VALUES = {"namespace": "default", "pod": ".*", "datasource": "prometheus"}


def _series_of(collector: MetricWrapperBase) -> dict[str, frozenset[str]]:
    [family] = collector.describe()
    # A private attribute, but the only place the label names live before a sample.
    labels = frozenset(collector._labelnames)
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_sum", "_count", "_created"),
        "gauge": ("",),
    }[family.type]
    series = {family.name + suffix: labels for suffix in suffixes}
    if family.type == "histogram":
        series[family.name + "_bucket"] = labels | {"le"}
    return series


def exported_series() -> dict[str, frozenset[str]]:
    """Series name -> label names, for everything the app can export."""
    registry = CollectorRegistry()
    metrics = get_metrics(registry)
    collectors = [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]
    # Nothing registered outside the attributes looked at here.
    registered = {family.name for family in registry.collect()}
    described = {family.name for c in collectors for family in c.describe()}
    assert registered <= described, registered - described
    series: dict[str, frozenset[str]] = {}
    for collector in collectors:
        series.update(_series_of(collector))
    return series


EXPORTED = exported_series()
KNOWN = {**EXPORTED, **SCRAPE_SERIES}


def selectors(expr: promql_parser.Expr) -> Iterator[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        elif isinstance(node, promql_parser.MatrixSelector):
            found.append(node.vector_selector)

    promql_parser.walk(expr, visit)
    return iter(found)


def grouping_labels(expr: promql_parser.Expr) -> set[str]:
    """Labels named in ``by (...)``, ``on (...)`` and ``group_left/right``."""
    labels: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier:
            labels.update(node.modifier.labels)
        if isinstance(node, promql_parser.BinaryExpr) and node.modifier:
            if node.modifier.matching:
                labels.update(node.modifier.matching.labels)
            labels.update(node.modifier.group_labels or [])

    promql_parser.walk(expr, visit)
    return labels


def metric_name(selector: promql_parser.VectorSelector) -> str:
    if selector.name:
        return selector.name
    names = [m.value for m in selector.matchers.matchers if m.name == "__name__"]
    assert names, f"selector without a metric name: {selector}"
    return names[0]


def check(query: Query) -> None:
    """Parse ``query`` and check its series and labels against the app."""
    expr = promql_parser.parse(substitute(query.expr, VALUES))
    available = set(TARGET_LABELS)
    for selector in selectors(expr):
        name = metric_name(selector)
        assert name in KNOWN, f"{query.where}: {name} is not exported by chanx"
        labels = KNOWN[name] | TARGET_LABELS | {"__name__"}
        used = {m.name for m in selector.matchers.matchers}
        assert used <= labels, f"{query.where}: {name} has no label {used - labels}"
        available |= labels
    unknown = grouping_labels(expr) - available
    assert not unknown, f"{query.where}: groups by unknown labels {unknown}"


ALL_QUERIES = panel_queries() + variable_selectors() + alert_queries()


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.where)
def test_query_parses_and_uses_only_real_series(query: Query) -> None:
    check(query)


def test_every_kind_of_query_is_covered() -> None:
    assert len(panel_queries()) >= 30
    assert len(alert_queries()) == 8
    assert variable_labels() == {"namespace": "namespace", "pod": "pod"}


@pytest.mark.parametrize("query", panel_queries(), ids=lambda q: q.where)
def test_panels_follow_the_namespace_and_pod_variables(query: Query) -> None:
    expr = promql_parser.parse(substitute(query.expr, VALUES))
    for selector in selectors(expr):
        used = {m.name: m.value for m in selector.matchers.matchers}
        assert used.get("namespace") == "default", f"{query.where}: {selector}"
        assert used.get("pod") == ".*", f"{query.where}: {selector}"


def test_the_metrics_cover_the_documented_contract() -> None:
    # Catches a query checked against a registry that lost a metric.
    assert "chanx_readiness_checks_total" in EXPORTED
    assert EXPORTED["chanx_channel_layer_errors_total"] == {"operation", "error_type"}
    assert "le" in EXPORTED["chanx_message_handling_duration_seconds_bucket"]


@pytest.mark.parametrize(
    "bad",
    [
        'sum(rate(chanx_messages_recieved_total{namespace="$namespace"}[5m]))',
        "sum by (room) (chanx_connections_active)",
        'chanx_connections_rejected_total{user_id="42"}',
        "sum(rate(chanx_connections_active_total[5m]))",
        "sum(rate(chanx_messages_sent_total[5m])",
    ],
)
def test_the_checker_rejects_what_chanx_does_not_have(bad: str) -> None:
    with pytest.raises((AssertionError, ValueError, SyntaxError)):
        check(Query("bad", bad))


def test_dashboard_datasources_are_variables() -> None:
    board = load_dashboard()
    names = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "tempo", "namespace", "pod", "trace_id"} <= names
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] in {"${datasource}", "${tempo}"}
