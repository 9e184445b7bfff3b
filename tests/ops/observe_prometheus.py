"""A real Prometheus for the operations kit: Kubernetes-like labels, chanx rules.

:class:`tests.e2e.peers.PrometheusServer` scrapes plain targets. The
dashboards and alerts select on ``namespace`` and ``pod``, which the
Prometheus Operator adds in a cluster; here each target gets them as static
labels, and the server loads ``deploy/prometheus/rules.yml`` as a cluster's
Prometheus would load the ``PrometheusRule``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.e2e.peers import PrometheusServer
from tests.ops.observe_queries import RULES

NAMESPACE = "chanx-e2e"


def labelled_prometheus(workdir: Path, pods: Mapping[str, str]) -> PrometheusServer:
    """A Prometheus scraping ``pods`` (pod name -> ``host:port``) every second.

    Every target carries ``namespace=NAMESPACE`` and its ``pod`` label; job
    is ``chanx``, as the ServiceMonitor in ``deploy/base`` sets it.
    """
    server = PrometheusServer(workdir, list(pods.values()))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "chanx",
                "static_configs": [
                    {
                        "targets": [address],
                        "labels": {"namespace": NAMESPACE, "pod": pod},
                    }
                    for pod, address in pods.items()
                ],
            }
        ],
    }
    server.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return server


def _api(server: PrometheusServer, path: str, **params: str) -> Any:
    reply = httpx.get(f"{server.url}/api/v1/{path}", params=params, timeout=10).json()
    assert reply["status"] == "success", reply
    return reply["data"]


def instant(server: PrometheusServer, promql: str) -> list[dict[str, Any]]:
    """Every series of an instant query (fails on a query error)."""
    data = _api(server, "query", query=promql)
    result: list[dict[str, Any]] = data["result"]
    return result


def label_values(server: PrometheusServer, label: str, match: str) -> list[str]:
    """What Grafana's ``label_values(match, label)`` lists."""
    values: list[str] = _api(server, f"label/{label}/values", **{"match[]": match})
    return values


def alert_rules(server: PrometheusServer) -> list[dict[str, Any]]:
    """The loaded alerting rules with their health and last error."""
    groups = _api(server, "rules", type="alert")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def active_alerts(server: PrometheusServer) -> list[dict[str, Any]]:
    """Pending and firing alerts."""
    alerts: list[dict[str, Any]] = _api(server, "alerts")["alerts"]
    return alerts
