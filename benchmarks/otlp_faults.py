"""Message latency while the OTLP collector is healthy, hanging or gone.

Starts the demo three times in real uvicorn processes on 127.0.0.1, each
exporting every span (``always_on``) to a different collector:

- healthy: ``benchmarks.otlp_sink`` in its own process (answers at once);
- hanging: accepts connections and never answers (exports time out);
- dead: a closed port (connections refused, retried with backoff).

and times ``ping``/``pong`` round trips on one WebSocket. Prints the
percentiles and the hanging/dead to healthy ratios side by side. Run:
``.venv/bin/python benchmarks/otlp_faults.py [PINGS]`` (default 2000).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.clients import next_frame, open_ws  # noqa: E402
from tests.e2e.servers import HOST, demo_env, free_port, launch, manage  # noqa: E402
from tests.hardening.faults_servers import (  # noqa: E402
    FAULTS_SETTINGS,
    SilentCollector,
)

WARMUP = 200


@contextlib.contextmanager
def healthy_sink() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.otlp_sink", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield f"http://{HOST}:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def round_trips(server: object, pings: int) -> list[float]:
    """Seconds per ping/pong round trip, after a warm-up."""
    async with open_ws(server, "/ws/ping/") as ws:  # type: ignore[arg-type]
        assert (await next_frame(ws))["payload"]["status_code"] == 200
        ping = json.dumps({"action": "ping"})
        samples: list[float] = []
        for index in range(WARMUP + pings):
            started = time.perf_counter()
            await ws.send(ping)
            await ws.recv()
            if index >= WARMUP:
                samples.append(time.perf_counter() - started)
        return samples


def measure(
    name: str, endpoint: str, env: dict[str, str], workdir: Path, pings: int
) -> list[float]:
    server_env = {
        **env,
        "OTEL_SERVICE_NAME": f"bench-{name}",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "10",
        "CHANX_LOG_FORMAT": "json",
    }
    server = launch(name, server_env, workdir)
    try:
        return asyncio.run(round_trips(server, pings))
    finally:
        server.stop()


def summary(samples: list[float]) -> tuple[float, float, float]:
    """p50, p99 and mean in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        statistics.median(ordered) * 1000,
        p99 * 1000,
        statistics.fmean(ordered) * 1000,
    )


def main() -> None:
    pings = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = demo_env(f"sqlite:///{workdir / 'db.sqlite3'}", "bench-otlp-faults")
        env.pop("REDIS_URL")  # the in-memory layer: only telemetry differs
        env["PYTHONPATH"] = f"{REPO}:{env['PYTHONPATH']}"
        # The demo settings without the per-connection rate limit.
        env["DJANGO_SETTINGS_MODULE"] = FAULTS_SETTINGS
        manage(env, "migrate", "--noinput")
        results: dict[str, tuple[float, float, float]] = {}
        with healthy_sink() as endpoint:
            results["healthy"] = summary(
                measure("healthy", endpoint, env, workdir, pings)
            )
        with SilentCollector() as silent:
            results["hanging"] = summary(
                measure("hanging", silent.endpoint, env, workdir, pings)
            )
        dead = f"http://{HOST}:{free_port()}"
        results["dead"] = summary(measure("dead", dead, env, workdir, pings))
    base = results["healthy"]
    print(f"{pings} ping round trips per collector (ms)")
    print(f"{'collector':<10} {'p50':>8} {'p99':>8} {'mean':>8}   ratio p50/p99/mean")
    for name, (p50, p99, mean) in results.items():
        ratios = f"{p50 / base[0]:.2f} / {p99 / base[1]:.2f} / {mean / base[2]:.2f}"
        print(f"{name:<10} {p50:8.3f} {p99:8.3f} {mean:8.3f}   {ratios}")


if __name__ == "__main__":
    main()
