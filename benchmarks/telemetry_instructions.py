"""Instructions telemetry executes per frame, counted by valgrind's callgrind.

In process, no server: the hook calls and the two JSON log lines of an echo
frame (``message_received``, ``message_sent``), with all three signals on
unless ``--parts`` names fewer. The span export is included (chanx's OTLP
encoding; nothing is posted): as in a server set up by ``setup()``, each
span is encoded as it ends (a ``span_records`` record) and waits as bytes;
the batch processor keeps every record until the end and the exporter
joins them then, so the count does not depend on when its thread wakes.
The script runs itself under callgrind for 2,000 and 6,000 frames and
prints the difference per frame, so startup cancels out. Two runs of the
same code read within about 2%; timings on a shared machine move more
than that.

Every frame is 17 bytes, as the benchmark's ping, unless ``--sizes N``
cycles through N sizes (17 to 16 + N bytes): real traffic, whose sizes
vary, is ``--sizes 100000`` (a size not seen before on every frame).

Run: ``python benchmarks/telemetry_instructions.py [--parts traces]
[--no-lines] [--no-encode] [--sizes N] [--root PATH]``; ``--root`` counts
another checkout's chanx (a ``git worktree`` of an earlier revision), so
two revisions can be compared. Needs Debian's ``valgrind``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

ROOT = Path(__file__).resolve().parents[1]
# Two runs' frame counts; BENCH_FRAMES="20,60" for a smoke run.
FRAMES = tuple(int(n) for n in os.environ.get("BENCH_FRAMES", "2000,6000").split(","))
_TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def _recording_exporter() -> Any:
    """chanx's OTLP exporter, its ``export`` building the request body only."""
    # Imported here: the chanx of --root is only on sys.path by now.
    from chanx.telemetry.otlp_exporter import FastOTLPSpanExporter

    class Recording(FastOTLPSpanExporter):
        spans = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.encode(spans)
            self.spans += len(spans)
            return SpanExportResult.SUCCESS

    # Nothing is posted: export() above only encodes.
    return Recording(endpoint="http://127.0.0.1:9/v1/traces")


class _CountingExporter(SpanExporter):
    """Counts the spans it is given (``--no-encode``)."""

    spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def run_frames(
    frames: int, parts: Sequence[str], lines: bool, encode: bool, sizes: int = 1
) -> int:
    """Make ``frames`` frames' telemetry; returns the spans exported."""
    # No worker wake-ups while frames run: the export happens once, at the end.
    os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = os.environ[
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
    ] = str(frames + 10)
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = str(10**9)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    import structlog
    from prometheus_client import CollectorRegistry

    from chanx.hooks import ConnectionInfo, get_hooks, install_hooks
    from chanx.telemetry.config import TelemetryConfig
    from chanx.telemetry.install import install
    from chanx.telemetry.logs import configure_logging
    from chanx.telemetry.sdk import create_tracer_provider

    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the run
    configure_logging(json=True, level="INFO", stream=devnull)
    exporter: Any = _recording_exporter() if encode else _CountingExporter()
    provider = create_tracer_provider(exporter=exporter)
    signals = {name.upper(): name in parts for name in ("logs", "traces", "metrics")}
    install(
        TelemetryConfig.from_setting(signals),
        registry=CollectorRegistry(),
        tracer_provider=provider,
    )
    hooks = get_hooks()
    conn = ConnectionInfo("c0ffee", "ChanxEcho", "/ws/chanx/echo/", "/ws/chanx/echo/")
    hooks.connection_started(conn, {"headers": []}).finish("accepted")
    log = structlog.get_logger("chanx.consumer").bind(
        connection_id=conn.connection_id,
        consumer=conn.consumer,
        path=conn.route,
        route=conn.route,
    )

    async def frames_in_a_loop() -> None:
        # A running loop, as in a server: log lines wait for its turn.
        for index in range(frames):
            size = 17 + index % sizes
            observation = hooks.message_received(conn, "ping", size, {})
            if lines:
                log.info("message_received", action="ping")
            hooks.message_sent(conn, "pong", size)
            if lines:
                log.info("message_sent", action="pong")
            observation.finish("ok")
            if index % 8 == 7:
                await asyncio.sleep(0)

    asyncio.run(frames_in_a_loop())
    provider.force_flush()
    install_hooks(None)
    return int(exporter.spans)


def _command(frames: int, args: argparse.Namespace) -> list[str]:
    """This script, run for ``frames`` frames with ``args``' options."""
    return [
        sys.executable,
        __file__,
        "--frames",
        str(frames),
        "--parts",
        ",".join(args.parts),
        *(["--no-lines"] if not args.lines else []),
        *(["--no-encode"] if not args.encode else []),
        "--sizes",
        str(args.sizes),
        "--root",
        str(args.root),
    ]


def warm_up(args: argparse.Namespace) -> None:
    """One frame outside callgrind, so both counted runs find compiled modules.

    A module edited since its last import is compiled again by the next run
    that imports it: counted in the first run only, the compiler's work would
    come off the per-frame figure.
    """
    subprocess.run(_command(1, args), check=True, capture_output=True, timeout=900)


def count(frames: int, args: argparse.Namespace) -> int:
    """Instructions of a whole run of ``frames`` frames under callgrind."""
    with tempfile.TemporaryDirectory(prefix="chanx-instructions-") as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            *_command(frames, args),
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=900)
        found = _TOTALS.search(out.read_text(errors="replace"))
        if found is None:
            raise RuntimeError(f"no instruction total in {out}")
        return int(found.group(1))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="logs,traces,metrics")
    parser.add_argument("--no-lines", dest="lines", action="store_false")
    parser.add_argument("--no-encode", dest="encode", action="store_false")
    parser.add_argument("--sizes", type=int, default=1)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--frames", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.parts = [part for part in args.parts.split(",") if part]
    if args.sizes < 1:
        parser.error("--sizes must be at least 1")
    # The chanx measured: --root's, then this checkout's for the rest.
    sys.path[:0] = [str(args.root), str(ROOT / "example"), str(ROOT)]
    if args.frames is not None:
        spans = run_frames(args.frames, args.parts, args.lines, args.encode, args.sizes)
        print(f"frames={args.frames} spans={spans}")
        return
    warm_up(args)
    low, high = (count(frames, args) for frames in FRAMES)
    per_frame = (high - low) / (FRAMES[1] - FRAMES[0])
    print(
        f"chanx from {args.root}: parts={','.join(args.parts) or 'none'} "
        f"lines={'on' if args.lines else 'off'} "
        f"encode={'on' if args.encode else 'off'}"
        f"{'' if args.sizes == 1 else f' sizes={args.sizes}'}: "
        f"{per_frame:,.0f} instructions per frame"
    )


if __name__ == "__main__":
    main()
