"""The demo, started the way the rendered manifests start it, serves what they ask.

For each overlay, against a fresh PostgreSQL database and the local Redis:
the init container's migration check fails until the migration Job's
command has run, then passes. The app container's command then serves with
the container's own environment (ConfigMap, Secrets, ``$(POD_NAME)``
expansion); only the addresses of Redis, PostgreSQL and the collector are
swapped for local ones. Over real sockets: the probes' paths answer, the
ServiceMonitor's scrape (with the prod token) gets the metrics, spans reach
``OTEL_EXPORTER_OTLP_ENDPOINT``, and SIGTERM ends the process well inside
the grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect
from websockets.typing import Origin

from tests.e2e.peers import OtlpReceiver, wait_until
from tests.e2e.servers import (
    EXAMPLE_DIR,
    HOST,
    REDIS_URL,
    REPO_ROOT,
    delete_redis_keys,
    free_port,
    postgres_database,
    redis_unreachable_reason,
)
from tests.ops.manifests_docker import Dockerfile
from tests.ops.manifests_lookup import FIELDS
from tests.ops.manifests_render import (
    OVERLAYS,
    Workload,
    find,
    render,
    resolve_env,
    secret_value,
)

pytestmark = pytest.mark.e2e

Obj = dict[str, Any]
COMMAND_TIMEOUT = 120.0
STARTUP_TIMEOUT = 60.0
SPAN_TIMEOUT = 30.0
DOCKERFILE = Dockerfile.parse(REPO_ROOT / "Dockerfile")


def process_env(container_env: dict[str, str], local: dict[str, str]) -> dict[str, str]:
    """What the process gets: the image's ENV, the container's, local peers.

    Nothing else leaks in from the test runner's environment, so a setting
    the manifests forgot is missing here too.
    """
    env = {
        "PATH": os.environ["PATH"],
        # The image installs chanx; here it comes from the checkout.
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(EXAMPLE_DIR)]),
        # Test pace only: export spans after 0.1 s instead of 5 s.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        # The image's PATH points at its /opt/venv; here sys.executable's venv.
        **{key: value for key, value in DOCKERFILE.env.items() if key != "PATH"},
        **container_env,
    }
    env.update({key: value for key, value in local.items() if key in container_env})
    return env


def python_argv(command: list[str]) -> list[str]:
    assert command[0] == "python", command
    return [sys.executable, *command[1:]]


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        python_argv(command),
        cwd=EXAMPLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


@contextmanager
def serve(command: list[str], env: dict[str, str], log: Path) -> Iterator[Any]:
    """Run the container's command on a free loopback port."""
    argv = python_argv(command)
    port = free_port()
    argv[argv.index("--host") + 1] = HOST
    argv[argv.index("--port") + 1] = str(port)
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=EXAMPLE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield port, process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=COMMAND_TIMEOUT)


def get(port: int, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        return client.get(f"http://{HOST}:{port}{path}", headers=headers or {})


def answers(port: int, path: str) -> bool:
    try:
        return get(port, path).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(autouse=True)
def _redis() -> None:
    reason = redis_unreachable_reason()
    if reason:
        pytest.fail(f"{reason}; start it with `make redis`")


def _migrate(objs: list[Obj], overlay: str, local: dict[str, str]) -> None:
    deployment = Workload(find(objs, "Deployment", "chanx-demo"))
    (check,) = deployment.pod["initContainers"]
    (job,) = Workload(find(objs, "Job", "chanx-demo-migrate")).pod["containers"]
    check_env = process_env(resolve_env(objs, check, overlay, FIELDS), local)
    job_env = process_env(resolve_env(objs, job, overlay, FIELDS), local)
    before = run(check["command"], check_env)
    assert before.returncode != 0, "the init container would not wait for the Job"
    migrated = run(job["command"], job_env)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    after = run(check["command"], check_env)
    assert after.returncode == 0, after.stdout + after.stderr


def _scrape_headers(objs: list[Obj], overlay: str) -> tuple[str, dict[str, str]]:
    (endpoint,) = find(objs, "ServiceMonitor", "chanx-demo")["spec"]["endpoints"]
    auth = endpoint.get("authorization")
    if auth is None:
        return endpoint["path"], {}
    ref = auth["credentials"]
    token = secret_value(objs, overlay, ref["name"], ref["key"])
    return endpoint["path"], {"Authorization": f"{auth['type']} {token}"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_demo_started_like_the_manifests_serves_what_they_point_at(
    overlay: str, tmp_path: Path
) -> None:
    _, objs = render(overlay)
    deployment = Workload(find(objs, "Deployment", "chanx-demo"))
    (container,) = deployment.pod["containers"]
    prefix = f"chanx-ops-{overlay}-{os.getpid()}"
    with (
        postgres_database(f"chanx_ops_{overlay}_{os.getpid()}") as database_url,
        OtlpReceiver() as receiver,
    ):
        local = {
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "CHANNELS_PREFIX": prefix,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            # Sample every trace: the ratio itself is the SDK's business
            # (test_sampler_settings_are_understood_by_the_sdk).
            "OTEL_TRACES_SAMPLER_ARG": "1.0",
        }
        _migrate(objs, overlay, local)
        env = process_env(resolve_env(objs, container, overlay, FIELDS), local)
        try:
            with serve(container["command"], env, tmp_path / "app.log") as (port, proc):
                _check_running_app(objs, overlay, container, env, port, receiver)
                # SIGTERM, as the kubelet sends after the preStop hook.
                proc.terminate()
                grace = deployment.pod["terminationGracePeriodSeconds"]
                # Stopped on its own, before the kubelet would SIGKILL it
                # (uvicorn re-raises the signal once it has shut down).
                assert proc.wait(timeout=grace) in (0, -signal.SIGTERM)
        except BaseException:
            print((tmp_path / "app.log").read_text(errors="replace")[-4000:])
            raise
        finally:
            delete_redis_keys(prefix)


def _check_running_app(
    objs: list[Obj],
    overlay: str,
    container: Obj,
    env: dict[str, str],
    port: int,
    receiver: OtlpReceiver,
) -> None:
    startup = container["startupProbe"]["httpGet"]["path"]
    wait_until(lambda: answers(port, startup), STARTUP_TIMEOUT, "the startup probe")
    for probe in ("livenessProbe", "readinessProbe"):
        response = get(port, container[probe]["httpGet"]["path"])
        assert response.status_code == 200, (probe, response.text)
        assert response.json() == {"status": "ok"}
    # A browser page on the first allowed host opens a WebSocket.
    host = env["ALLOWED_HOSTS"].split(",")[0]
    with connect(
        f"ws://{HOST}:{port}/ws/ping/",
        origin=Origin(f"https://{host}"),
        open_timeout=10,
        proxy=None,
    ) as ws:
        path, headers = _scrape_headers(objs, overlay)
        response = get(port, path, headers)
        assert response.status_code == 200, response.text
        # The metric the HPA's custom-metric example names.
        assert "chanx_connections_active{" in response.text
        ws.close()
    if headers:
        assert get(port, path).status_code == 401
    service = env["OTEL_SERVICE_NAME"]
    spans = wait_until(
        lambda: receiver.find(service=service), SPAN_TIMEOUT, f"spans from {service}"
    )
    assert any(span.name.startswith("connect ") for span in spans)
