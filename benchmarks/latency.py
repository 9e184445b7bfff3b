"""Round-trip latency under load, two revisions of chanx and plain Channels.

Checks ``BENCH_BASE`` (default ``HEAD``) out into a temporary git worktree
and serves ``benchmarks.server_app`` from it and from this working tree
(chanx, telemetry fully on), with plain Channels alongside, all under
``BENCH_LAUNCHER`` (``chanx.serve``, the default, or ``uvicorn``). For
``BENCH_ROUNDS`` rounds (default 9, the order reversed every other round)
50 clients ping each server for ``BENCH_GC_SECONDS`` (default 8), each
waiting for its pong (:func:`benchmarks.gc_pauses.measure`;
``BENCH_PROFILE=smoke``: one round of a second, 5 clients).

Prints each server's medians over rounds (round trips/s, p50, p99, p99.9
and the slowest round trip, in ms) with its full garbage collections per
1,000 round trips over all rounds, each round's rate and p99, and the
working tree / base ratios per round (their medians): latency percentiles
move with the machine as much as rates do, so only the paired ratios
compare.

Run: ``BENCH_BASE=HEAD~1 .venv/bin/python benchmarks/latency.py`` (about
five minutes).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.gc_pauses import CLIENTS, SECONDS, SMOKE, Sample, run  # noqa: E402
from benchmarks.live_servers import (  # noqa: E402
    BenchServer,
    OtlpSink,
    serving,
    telemetry_env,
)
from benchmarks.revisions import worktree  # noqa: E402

BASE = os.environ.get("BENCH_BASE", "HEAD")
ROUNDS = 1 if SMOKE else int(os.environ.get("BENCH_ROUNDS", "9"))
LAUNCHER = os.environ.get("BENCH_LAUNCHER", "chanx.serve")
# Server name -> the route kind it is pinged on.
KINDS = {"base": "chanx", "working tree": "chanx", "plain": "plain"}


def report(samples: dict[str, list[Sample]]) -> None:
    print(
        f"echo latency under {LAUNCHER}, {CLIENTS} clients: base {BASE} vs "
        f"working tree, "
        f"{ROUNDS} rounds (medians; ms)"
    )
    print(
        f"{'':14}{'rt/s':>9}{'p50':>8}{'p99':>8}{'p99.9':>8}{'max':>8}"
        f"{'full GCs/1k rt':>16}"
    )
    for name, rows in samples.items():
        table = [(s.rate, s.p50, s.p99, s.p999, s.worst) for s in rows]
        rate, *times = [statistics.median(c) for c in zip(*table, strict=True)]
        # Over all rounds: a round sees only a few full collections.
        fulls = sum(s.full_collections for s in rows)
        per_1k = 1000 * fulls / (sum(s.rate for s in rows) * SECONDS)
        print(
            f"{name:14}{rate:9.0f}"
            + "".join(f"{t:8.1f}" for t in times)
            + f"{per_1k:16.3f}"
        )
    for name, rows in samples.items():
        print(f"  {name:12}", " ".join(f"{s.rate:5.0f}/{s.p99:4.1f}" for s in rows))
    pairs = list(zip(samples["working tree"], samples["base"], strict=True))
    rate = statistics.median(new.rate / old.rate for new, old in pairs)
    p99 = statistics.median(new.p99 / old.p99 for new, old in pairs)
    print(f"working tree / base, medians of the per-round ratios: rate {rate:.3f}")
    print(f"                                                     p99 {p99:.3f}")


def main() -> None:
    sink = OtlpSink()
    sink.start()
    try:
        with (
            worktree(BASE) as base_root,
            tempfile.TemporaryDirectory(prefix="chanx-latency-") as tmp,
        ):
            workdir = Path(tmp)
            env = telemetry_env(workdir, sink)
            roots = {"base": base_root, "working tree": ROOT, "plain": ROOT}
            servers = {
                name: BenchServer(
                    name.replace(" ", "_"), env, workdir, launcher=LAUNCHER, root=root
                )
                for name, root in roots.items()
            }
            with serving(servers.values()):
                samples = asyncio.run(run(servers, KINDS, ROUNDS))
        report(samples)
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
