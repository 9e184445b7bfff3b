"""The PromQL the operations kit ships: dashboard panels, variables, alerts.

Shared by ``test_promql.py`` (static checks against the app's registry) and
``test_dashboards_live.py`` (the same queries against a real Prometheus).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "grafana" / "dashboards" / "chanx-overview.json"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"

# What Grafana puts in for its built-in variables when it runs a query.
BUILTINS = {"__rate_interval": "1m", "__range": "1h", "__interval": "30s"}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it comes from."""

    where: str
    expr: str


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _is_prometheus(panel: Mapping[str, Any], target: Mapping[str, Any]) -> bool:
    source = target.get("datasource") or panel.get("datasource") or {}
    return bool(source.get("type") == "prometheus")


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def panel_queries(dashboard: Mapping[str, Any] | None = None) -> list[Query]:
    """Every Prometheus target of every panel (rows included)."""
    board = dashboard or load_dashboard()
    found: list[Query] = []
    for panel in _panels(board["panels"]):
        for target in panel.get("targets", []):
            if _is_prometheus(panel, target):
                where = f"panel {panel['title']!r} target {target['refId']}"
                found.append(Query(where, target["expr"]))
    return found


def variable_selectors(dashboard: Mapping[str, Any] | None = None) -> list[Query]:
    """The series selector of every ``label_values(selector, label)`` variable."""
    board = dashboard or load_dashboard()
    found: list[Query] = []
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = _LABEL_VALUES.match(variable["query"])
        assert match, f"variable {variable['name']}: unexpected query"
        found.append(Query(f"variable {variable['name']}", match["selector"]))
    return found


def variable_labels(dashboard: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Query variable name -> the label it lists."""
    board = dashboard or load_dashboard()
    labels: dict[str, str] = {}
    for variable in board["templating"]["list"]:
        match = _LABEL_VALUES.match(str(variable.get("query", "")))
        if variable["type"] == "query" and match:
            labels[variable["name"]] = match["label"]
    return labels


def alert_queries(path: Path = RULES) -> list[Query]:
    """The expression of every alerting rule."""
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return [
        Query(f"alert {rule['alert']}", rule["expr"])
        for group in groups
        for rule in group["rules"]
        if "alert" in rule
    ]


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables (``$name``, ``${name}``) as Grafana would.

    Raises:
        KeyError: A variable that neither ``values`` nor the built-ins know.
    """
    known = {**BUILTINS, **values}

    def value(match: re.Match[str]) -> str:
        return known[match.group(1) or match.group(2)]

    return _VARIABLE.sub(value, expr)
