"""The *chanx overview* dashboard: variables, rows, panel ids."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import dashboard as model

from chanx_dashboards.panels import PROMETHEUS
from chanx_dashboards.rows import ROWS

__all__ = ["overview"]


def _variables() -> list[Builder[model.VariableModel]]:
    refresh = model.VariableRefresh.ON_TIME_RANGE_CHANGED
    return [
        dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus"),
        dash.DatasourceVariable("tempo").label("Tempo (traces)").type("tempo"),
        dash.QueryVariable("namespace")
        .label("Namespace")
        .datasource(PROMETHEUS)
        .query("label_values(chanx_build_info, namespace)")
        .refresh(refresh),
        dash.QueryVariable("pod")
        .label("Pod")
        .datasource(PROMETHEUS)
        .query('label_values(chanx_build_info{namespace="$namespace"}, pod)')
        .refresh(refresh)
        .multi(True)
        .include_all(True)
        .all_value(".*"),
        dash.TextBoxVariable("trace_id").label("Trace id"),
    ]


def overview() -> model.Dashboard:
    """The *chanx overview* dashboard."""
    board = (
        dash.Dashboard("chanx overview")
        .uid("chanx-overview")
        .description("Connections, frames, groups, events and pods of chanx apps.")
        .tags(["chanx", "websocket"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .variables(_variables())
    )
    for title, panels in ROWS:
        board.with_row(dash.Row(title))
        for panel in panels():
            board.with_panel(panel)
    built: model.Dashboard = board.build()
    # Stable ids in layout order: Grafana links and provisioning key on them.
    for panel_id, item in enumerate(built.panels or [], start=1):
        item.id_val = panel_id
    return built
