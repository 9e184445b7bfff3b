"""Panel and query builders shared by the chanx dashboards.

Every selector carries the dashboard's ``namespace`` and ``pod`` variables
(labels the scrape adds); ``$__rate_interval`` is Grafana's rate window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grafana_foundation_sdk.builders import common, prometheus, stat
from grafana_foundation_sdk.builders import timeseries as ts
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import dashboard as model

__all__ = [
    "PROMETHEUS",
    "RATE",
    "SEL",
    "TEMPO",
    "graph",
    "quantile",
    "rate",
    "single",
    "targets",
]

PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
TEMPO = model.DataSourceRef(type_val="tempo", uid="${tempo}")
# Every chanx selector: the chosen namespace and pods.
SEL = 'namespace="$namespace", pod=~"$pod"'
RATE = "$__rate_interval"

Query = tuple[str, str]  # (PromQL, legend)


def rate(metric: str, by: str, extra: str = "") -> str:
    """``sum by (by) (rate(metric{SEL extra}[$__rate_interval]))``."""
    return f"sum by ({by}) (rate({metric}{{{SEL}{extra}}}[{RATE}]))"


def quantile(q: float, metric: str, by: str) -> str:
    """The ``q`` quantile of histogram ``metric`` per ``by``."""
    buckets = f"rate({metric}_bucket{{{SEL}}}[{RATE}])"
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) ({buckets}))"


def targets(queries: Sequence[Query]) -> list[Builder[Any]]:
    return [
        prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(65 + i))
        for i, (expr, legend) in enumerate(queries)
    ]


def graph(
    title: str, unit: str, queries: Sequence[Query], description: str, width: int = 12
) -> ts.Panel:
    """A time series panel of Prometheus queries."""
    panel: ts.Panel = (
        ts.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .min(0)
        .fill_opacity(10)
        .legend(common.VizLegendOptions().show_legend(True))
        .span(width)
        .height(8)
    )
    for target in targets(queries):
        panel.with_target(target)
    return panel


def single(title: str, unit: str, expr: str, description: str) -> stat.Panel:
    """A stat panel of one unlabelled Prometheus expression."""
    panel: stat.Panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .with_target(targets([(expr, title)])[0])
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
        .span(4)
        .height(4)
    )
    return panel
