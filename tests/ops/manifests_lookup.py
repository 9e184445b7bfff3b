"""Follow references between rendered objects the way Kubernetes would.

Named ports to numbers, selectors to workloads, URLs in the environment to
the Service and pods behind them, NetworkPolicy rules to a yes/no for one
peer and port.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.ops.manifests_render import Workload, find, selects, workloads

__all__ = [
    "DEFAULT_PORTS",
    "FIELDS",
    "allows",
    "app",
    "container_port",
    "in_cluster_server",
    "policy_for",
    "targets",
]

#: Values of the fieldRef variables, which only a running pod has.
FIELDS = {"POD_NAME": "chanx-demo-0", "POD_NAMESPACE": "chanx"}
#: Ports of URL schemes that may leave the port out.
DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "postgres": 5432, "http": 80}
Obj = dict[str, Any]


def app(objs: list[Obj]) -> tuple[Workload, Obj]:
    """The demo's Deployment and its ``app`` container."""
    workload = Workload(find(objs, "Deployment", "chanx-demo"))
    (container,) = [c for c in workload.pod["containers"] if c["name"] == "app"]
    return workload, container


def container_port(workload: Workload, port: str | int) -> int:
    """A named (or numbered) port of the workload's containers, as a number."""
    if isinstance(port, int):
        return port
    for container in workload.pod["containers"]:
        for item in container.get("ports", []):
            if item.get("name") == port:
                return int(item["containerPort"])
    raise AssertionError(f"{workload} has no container port named {port!r}")


def targets(objs: list[Obj], selector: Obj) -> set[str]:
    """``Kind/name`` of the workloads whose pods ``selector`` matches."""
    return {repr(w) for w in workloads(objs) if selects(selector, w.labels)}


def allows(
    rules: list[Obj], peer: Workload | None, port: int, target: Workload
) -> bool:
    """Whether NetworkPolicy ``rules`` admit TCP/UDP ``port`` (from ``peer``)."""
    for rule in rules:
        peers = rule.get("from", rule.get("to"))
        if peers and (
            peer is None
            or not any(selects(p.get("podSelector", {}), peer.labels) for p in peers)
        ):
            continue
        ports = rule.get("ports")
        if not ports or any(container_port(target, p["port"]) == port for p in ports):
            return True
    return False


def policy_for(objs: list[Obj], workload: Workload) -> Obj:
    """The one NetworkPolicy that selects the workload's pods."""
    (policy,) = [
        obj
        for obj in objs
        if obj["kind"] == "NetworkPolicy"
        and selects(obj["spec"]["podSelector"], workload.labels)
    ]
    return policy


def in_cluster_server(objs: list[Obj], url: str) -> tuple[Workload, int] | None:
    """The workload behind a URL's host (a Service name) and its target port.

    ``None`` when the host is not a Service of the overlay (a managed service).
    """
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    services = [
        o
        for o in objs
        if o["kind"] == "Service" and o["metadata"]["name"] == parts.hostname
    ]
    if not services:
        return None
    (service,) = services
    (service_port,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    (server,) = [
        w for w in workloads(objs) if selects(service["spec"]["selector"], w.labels)
    ]
    return server, container_port(server, service_port["targetPort"])
