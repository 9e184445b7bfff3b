"""The dashboard and the alerts against a real Prometheus scraping the demo.

Two demo processes under real uvicorn: ``chanx-healthy`` on the local Redis,
``chanx-broken`` pointed at a Redis port nobody listens on (its group sends
and readiness probes fail). Debian's Prometheus scrapes both with the labels
a Kubernetes scrape adds and loads ``deploy/prometheus/rules.yml``. After
real traffic, every Prometheus query of every dashboard panel must return
data, the template variables must list the scraped pods, and every alert
rule must evaluate cleanly, flagging the broken pod and only it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.clients import (
    AUTH_OK,
    LOBBY,
    RECV_TIMEOUT,
    next_frame,
    open_ws,
    send_action,
)
from tests.e2e.peers import PrometheusServer, wait_until
from tests.e2e.servers import (
    HOST,
    UvicornServer,
    free_port,
    launch,
    seeded_demo,
)
from tests.ops.observe_prometheus import (
    NAMESPACE,
    active_alerts,
    alert_rules,
    instant,
    label_values,
    labelled_prometheus,
)
from tests.ops.observe_queries import alert_queries, panel_queries, substitute

pytestmark = pytest.mark.e2e

HEALTHY, BROKEN = "chanx-healthy", "chanx-broken"
# What Grafana sends for a multi-value "pod" variable with both pods chosen.
VALUES = {"namespace": NAMESPACE, "pod": f"({HEALTHY}|{BROKEN})"}
WAIT = 30.0


@dataclass
class OpsCluster:
    healthy: UvicornServer
    broken: UvicornServer
    tokens: dict[str, str]
    prometheus: PrometheusServer


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsCluster]:
    workdir = tmp_path_factory.mktemp("e2e-ops")
    servers: list[UvicornServer] = []
    with seeded_demo(workdir) as (env, tokens):
        try:
            servers.append(launch(HEALTHY, env, workdir))
            dead_redis = f"redis://{HOST}:{free_port()}/0"
            servers.append(launch(BROKEN, {**env, "REDIS_URL": dead_redis}, workdir))
            healthy, broken = servers
            pods = {HEALTHY: f"{HOST}:{healthy.port}", BROKEN: f"{HOST}:{broken.port}"}
            prometheus = labelled_prometheus(workdir, pods)
            with prometheus.running():
                yield OpsCluster(healthy, broken, tokens, prometheus)
        finally:
            for server in servers:
                server.stop()


async def drive_traffic(ops: OpsCluster) -> None:
    """Frames (good, undecodable, invalid), an event, a refused handshake, probes."""
    token = ops.tokens["alice"]
    async with open_ws(ops.healthy, LOBBY, token=token) as ws:
        assert await next_frame(ws) == AUTH_OK
        await send_action(ws, "chat", {"content": "observed"})
        assert (await next_frame(ws))["action"] == "room_message"
        await ws.send("{not json")
        assert (await next_frame(ws))["action"] == "error"
        await send_action(ws, "chat", {"no_content": True})
        assert (await next_frame(ws))["action"] == "error"
        assert (await announce(ops.healthy, token)).status_code == 200
        assert (await next_frame(ws))["action"] == "announcement"
    async with open_ws(ops.healthy, LOBBY, token="0" * 40) as refused:
        assert (await next_frame(refused))["payload"]["status_code"] == 401
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(refused.recv(), RECV_TIMEOUT)
    # The broken pod's group send fails inside the channel layer.
    failed = await announce(ops.broken, token)
    assert failed.status_code == 503
    assert failed.json() == {"status": "unavailable", "detail": "try again later"}
    assert b"Traceback" not in failed.content
    assert await probe(ops.healthy) == 200
    assert await probe(ops.broken) == 503


async def announce(server: UvicornServer, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        return await http.post(
            "/api/announce/",
            json={"content": "observed", "level": "info"},
            headers={"Authorization": f"Token {token}"},
        )


async def probe(server: UvicornServer) -> int:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        return (await http.get("/readyz")).status_code


def _empty_panels(ops: OpsCluster) -> list[str]:
    return [
        query.where
        for query in panel_queries()
        if not instant(ops.prometheus, substitute(query.expr, VALUES))
    ]


async def test_every_panel_query_shows_data_after_real_traffic(ops: OpsCluster) -> None:
    await drive_traffic(ops)
    empty: list[str] = []

    def all_filled() -> bool:
        empty[:] = _empty_panels(ops)
        return not empty

    try:
        await asyncio.to_thread(
            wait_until, all_filled, WAIT, "every panel to show data"
        )
    except AssertionError:
        pytest.fail(f"panels still without data: {empty}")


async def test_variables_list_the_scraped_namespace_and_pods(ops: OpsCluster) -> None:
    def listed() -> bool:
        pods = label_values(
            ops.prometheus, "pod", f'chanx_build_info{{namespace="{NAMESPACE}"}}'
        )
        return sorted(pods) == sorted([HEALTHY, BROKEN])

    await asyncio.to_thread(wait_until, listed, WAIT, "both pods in the pod variable")
    namespaces = label_values(ops.prometheus, "namespace", "chanx_build_info")
    assert namespaces == [NAMESPACE]


def _evaluated_cleanly(ops: OpsCluster) -> bool:
    rules = alert_rules(ops.prometheus)
    assert len(rules) == len(alert_queries())
    for rule in rules:
        assert rule["health"] != "err", f"{rule['name']}: {rule.get('lastError')}"
    return all(rule["health"] == "ok" for rule in rules)


def _alerting(ops: OpsCluster, name: str) -> list[dict[str, Any]]:
    return [
        alert["labels"]
        for alert in active_alerts(ops.prometheus)
        if alert["labels"]["alertname"] == name
    ]


async def test_alerts_evaluate_and_single_out_the_broken_pod(ops: OpsCluster) -> None:
    await drive_traffic(ops)
    await asyncio.to_thread(wait_until, lambda: _evaluated_cleanly(ops), WAIT, "rules")
    for query in alert_queries():
        instant(ops.prometheus, query.expr)  # executes without error

    def not_ready() -> list[dict[str, Any]]:
        # Each failed probe grows the counter; two scrapes apart, increase() sees it.
        httpx.get(f"{ops.broken.http_url}/readyz", timeout=10)
        httpx.get(f"{ops.healthy.http_url}/readyz", timeout=10)
        return _alerting(ops, "ChanxNotReady")

    flagged = await asyncio.to_thread(wait_until, not_ready, WAIT, "ChanxNotReady")
    assert [labels["pod"] for labels in flagged] == [BROKEN]
    layer = await asyncio.to_thread(
        wait_until,
        lambda: _alerting(ops, "ChanxChannelLayerErrors"),
        WAIT,
        "ChanxChannelLayerErrors",
    )
    assert [(labels["namespace"], labels["operation"]) for labels in layer] == [
        (NAMESPACE, "group_send")
    ]
    assert not _alerting(ops, "ChanxTargetDown")
    assert not _alerting(ops, "ChanxTargetMissing")
