"""Where a live server spends its time: py-spy on one variant under echo load.

Starts one benchmark server (``BENCH_TELEMETRY`` on unless ``off`` is given),
loads it with ``BENCH_PROFILE_SECONDS`` of round-trip echoes from
``BENCH_PROFILE_CLIENTS`` clients (or fan-out with ``fanout``) and samples it
with ``py-spy`` (``pip install py-spy``; not a chanx dependency). Prints the
functions with the most samples, self and inclusive, and leaves the
collapsed stacks (flame-graph input) in ``/tmp/chanx-profile.txt``.

Run: ``python benchmarks/profile_live.py [on|off] [echo|fanout|plain]``.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import live_clients as clients  # noqa: E402
from benchmarks.live_servers import (  # noqa: E402
    BenchServer,
    OtlpSink,
    start_all,
    telemetry_env,
)

OUT = Path("/tmp/chanx-profile.txt")
SECONDS = float(os.environ.get("BENCH_PROFILE_SECONDS", "10"))
CLIENTS = int(os.environ.get("BENCH_PROFILE_CLIENTS", "20"))


async def load(server: BenchServer, workload: str) -> None:
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        if workload == "fanout":
            # As in make bench: 200 clients in the group, many sends each.
            await clients.fan_out(server.ws_url + "/ws/chanx/fanout/", 200, 300)
        else:
            kind = "plain" if workload == "plain" else "chanx"
            url = server.ws_url + f"/ws/{kind}/echo/"
            await clients.echo_round_trip(url, CLIENTS, 200)


def summarize(top: int = 30) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in OUT.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    print(f"{total} samples; self time:")
    for frame, count in own.most_common(top):
        print(f"  {count / total:6.1%}  {frame}")
    print("inclusive:")
    for frame, count in inclusive.most_common(top * 2):
        print(f"  {count / total:6.1%}  {frame}")


def main() -> None:
    telemetry = "off" if "off" in sys.argv[1:] else "on"
    workload = next((a for a in sys.argv[1:] if a in ("fanout", "plain")), "echo")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    sink = OtlpSink()
    sink.start()
    with tempfile.TemporaryDirectory(prefix="chanx-profile-") as tmp:
        env = telemetry_env(Path(tmp), sink, telemetry)
        server = BenchServer("profiled", env, Path(tmp))
        start_all([server])
        try:
            assert server.process is not None
            spy = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(server.process.pid),
                    "--format",
                    "raw",
                    "--output",
                    str(OUT),
                    "--rate",
                    "250",
                    "--nonblocking",
                    "--duration",
                    str(int(SECONDS)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            asyncio.run(load(server, workload))
            spy.wait(timeout=SECONDS + 30)
        finally:
            server.stop()
            sink.stop()
    summarize()


if __name__ == "__main__":
    main()
