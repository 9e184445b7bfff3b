"""/metrics with several uvicorn workers: one view of all, correct after a crash.

uvicorn runs two worker processes with ``PROMETHEUS_MULTIPROC_DIR`` set; any
worker answers ``/metrics`` with the sum over all of them. A worker killed
with SIGKILL (no chance to clean up) must not leave its open connections in
``chanx_connections_active``: uvicorn starts a new worker, and the gauge
counts only the sockets that are really still open.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.e2e.clients import AUTH_OK, LOBBY, RECV_TIMEOUT, next_frame, open_ws
from tests.e2e.peers import wait_until
from tests.e2e.servers import (
    UvicornServer,
    delete_redis_keys,
    demo_env,
    launch,
    manage,
    seed_tokens,
)

pytestmark = pytest.mark.e2e

CLIENTS = 6


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after ")".
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def _active(server: UvicornServer) -> float:
    text = httpx.get(f"{server.http_url}/metrics", timeout=5).text
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("chanx_connections_active{")
    )


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UvicornServer]:
    workdir = tmp_path_factory.mktemp("e2e-multiprocess")
    metrics_dir = workdir / "prometheus-multiproc"
    metrics_dir.mkdir()
    prefix = f"chanx-e2e-{uuid.uuid4().hex}"
    env = demo_env(f"sqlite:///{workdir / 'db.sqlite3'}", prefix)
    manage(env, "migrate", "--noinput")
    env["E2E_TOKENS"] = json.dumps(seed_tokens(env))
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    server = launch("workers", env, workdir, extra_args=["--workers", "2"])
    try:
        yield server
    finally:
        server.stop()
        delete_redis_keys(prefix)


async def _still_open(ws: ClientConnection) -> bool:
    try:
        await ws.send(json.dumps({"action": "ping"}))
        frame = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
    except ConnectionClosed:
        return False
    return bool(json.loads(frame)["action"] == "pong")


async def test_active_connections_stay_right_when_a_worker_dies(
    workers: UvicornServer,
) -> None:
    assert workers.process is not None
    master = workers.process.pid
    pids = wait_until(
        lambda: len(_children(master)) == 2 and _children(master),
        30,
        "two uvicorn workers",
    )
    token = json.loads(workers.env["E2E_TOKENS"])["alice"]
    sockets = [open_ws(workers, LOBBY, token=token) for _ in range(CLIENTS)]
    clients = [await s.__aenter__() for s in sockets]
    try:
        for ws in clients:
            assert await next_frame(ws) == AUTH_OK
        # Whichever worker answers, it reports both workers' connections.
        for _ in range(4):
            assert await asyncio.to_thread(_active, workers) == CLIENTS
        os.kill(pids[0], signal.SIGKILL)
        survivors = [await _still_open(ws) for ws in clients]
        if all(survivors):
            # Every socket was on the other worker: kill that one instead.
            os.kill(pids[1], signal.SIGKILL)
            survivors = [await _still_open(ws) for ws in clients]
        expected = sum(survivors)
        assert expected < CLIENTS
        wait_until(
            lambda: len(_children(master)) == 2,
            30,
            "uvicorn to replace the dead worker",
        )
        wait_until(
            lambda: _active(workers) == expected,
            30,
            f"chanx_connections_active == {expected}",
        )
    finally:
        for socket in sockets:
            await socket.__aexit__(None, None, None)
