"""``python -m chanx.serve`` freezes the startup heap, unless told not to,
in every worker.

Real server processes: the freeze is reported in the JSON log with the
number of objects frozen, the server goes on answering frames, and
``--no-gc-freeze`` or a misspelt ``CHANX_GC_FREEZE`` behave as documented.
With ``--workers 2`` each worker freezes its heap and drains on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clients import RECV_TIMEOUT, next_frame, open_ws
from tests.hardening.faults_servers import (
    ServeProcess,
    ServeSetup,
    eventually,
    launch_serve,
    logged_events,
    logged_records,
    redis_and_env,
)

pytestmark = pytest.mark.e2e

APP = "tests.hardening.faults_asgi:application"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeSetup]:
    workdir = tmp_path_factory.mktemp("serve-startup")
    with redis_and_env(workdir, FAULTS_SLOW_REPLY="0") as env:
        env.pop("CHANX_GC_FREEZE", None)
        yield ServeSetup(workdir, env)


def log_records(server: ServeProcess, event: str) -> list[dict[str, Any]]:
    return [r for r in logged_records(server) if r["event"] == event]


async def answers_a_ping(server: ServeProcess) -> None:
    async with open_ws(server, "/ws/slow/") as ws:
        assert (await next_frame(ws))["payload"]["status_code"] == 200
        await ws.send(json.dumps({"action": "ping"}))
        assert (await next_frame(ws))["action"] == "pong"


async def test_the_startup_heap_is_frozen_and_the_server_serves(
    setup: ServeSetup,
) -> None:
    server = launch_serve("frozen", setup.env, setup.workdir, APP, [])
    try:
        # Logged before the server reports that it accepts connections,
        # which launch_serve waited for.
        [record] = log_records(server, "startup_heap_frozen")
        # Django, DRF, Channels, pydantic and the app: far more than this.
        assert record["objects"] > 50_000
        assert not log_records(server, "startup_heap_not_frozen")
        await answers_a_ping(server)
    finally:
        server.stop()


async def test_no_gc_freeze_leaves_the_heap_as_it_is(setup: ServeSetup) -> None:
    server = launch_serve("unfrozen", setup.env, setup.workdir, APP, ["--no-gc-freeze"])
    try:
        [record] = log_records(server, "startup_heap_not_frozen")
        assert record["reason"] == "CHANX_GC_FREEZE=0"
        assert not log_records(server, "startup_heap_frozen")
        await answers_a_ping(server)
    finally:
        server.stop()


def test_a_misspelt_switch_stops_the_launch_with_a_hint(setup: ServeSetup) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chanx.serve", APP, "--port", "1"],
        cwd=ROOT,
        env={**setup.env, "CHANX_GC_FREEZE": "perhaps"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "CHANX_GC_FREEZE='perhaps' is not a yes/no value" in result.stderr
    assert "Traceback" not in result.stderr


async def test_every_worker_freezes_its_heap_and_drains(setup: ServeSetup) -> None:
    server = launch_serve("workers", setup.env, setup.workdir, APP, ["--workers", "2"])
    try:
        await eventually(
            lambda: asyncio.to_thread(
                lambda: len(log_records(server, "startup_heap_frozen")) == 2
            ),
            RECV_TIMEOUT,
            "both workers to freeze their heap",
        )
        await answers_a_ping(server)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.process.wait, RECV_TIMEOUT)
        events = logged_events(server)
        # uvicorn's own workers would close at once, without a drain.
        assert events.count("drain_finished") == 2
        assert events.count("server_stopped") == 2
    finally:
        server.stop()
