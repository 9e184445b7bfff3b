"""The processes of a live benchmark: uvicorn servers, an OTLP sink, the database.

Every server runs ``benchmarks.server_app`` under the same uvicorn options on a
free port of 127.0.0.1; only its environment (telemetry on or off, channel
layer) differs. Servers log to files in the run's temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
REDIS_URL = f"redis://{HOST}:6379/0"
#: The same for every server: uvicorn's default WebSocket protocol and loop.
UVICORN_OPTIONS = ["--lifespan", "off", "--ws", "auto", "--loop", "auto"]
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def base_env(workdir: Path) -> dict[str, str]:
    """Environment shared by the servers and the seeding command."""
    python_path = [str(ROOT)]
    if os.environ.get("PYTHONPATH"):
        python_path.append(os.environ["PYTHONPATH"])
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.server_settings",
        "BENCH_DB": str(workdir / "bench.sqlite3"),
        "PYTHONPATH": os.pathsep.join(python_path),
        "PYTHONUNBUFFERED": "1",
    }


def telemetry_env(
    workdir: Path, sink: OtlpSink, telemetry: str = "on"
) -> dict[str, str]:
    """:func:`base_env` for servers with ``BENCH_TELEMETRY=telemetry`` that
    export their spans to ``sink``."""
    return {
        **base_env(workdir),
        "BENCH_TELEMETRY": telemetry,
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
    }


def seed(env: dict[str, str], users: int) -> None:
    """Create the SQLite database with ``users`` token-holding users.

    Raises:
        RuntimeError: The command failed; the message has its output.
    """
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.server_app", "seed", str(users)],
        cwd=ROOT,
        env={**env, "BENCH_TELEMETRY": "off"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{result.stdout}\n{result.stderr}")


@dataclass
class BenchServer:
    """One uvicorn process serving ``benchmarks.server_app:application``.

    ``launcher`` is the module run with ``python -m``: ``uvicorn``, or
    ``chanx.serve`` (uvicorn with chanx's startup freeze and drain), which
    also takes ``extra_args`` (e.g. ``--no-gc-freeze``). The process runs in
    ``root`` and imports chanx and the app from there.
    """

    name: str
    env: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    launcher: str = "uvicorn"
    extra_args: list[str] = field(default_factory=list)
    #: The checkout served (another revision's, in ``revisions.py``).
    root: Path = ROOT
    #: A command prefix, e.g. ``benchmarks.callgrind.wrapper(...)``.
    wrapper: list[str] = field(default_factory=list)
    #: Seconds :meth:`wait_ready` waits (a server under valgrind starts slowly).
    startup_timeout: float = STARTUP_TIMEOUT
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _output: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    @property
    def output_path(self) -> Path:
        return self.workdir / f"uvicorn-{self.name}.out"

    def start(self) -> None:
        """Start the process; :meth:`wait_ready` waits until it serves."""
        env = {**self.env, **self.launch_env()}
        self._output = self.output_path.open("wb")
        self.process = subprocess.Popen(
            [
                *self.wrapper,
                sys.executable,
                "-m",
                self.launcher,
                "benchmarks.server_app:application",
                "--host",
                HOST,
                "--port",
                str(self.port),
                *UVICORN_OPTIONS,
                *self.extra_args,
            ],
            cwd=self.root,
            env=env,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )

    def launch_env(self) -> dict[str, str]:
        """What :meth:`start` adds to ``env``: the log file, and the Python
        path pointing at ``root`` instead of this checkout."""
        added = {"BENCH_LOG_FILE": str(self.workdir / f"{self.name}.jsonl")}
        if self.root != ROOT:
            paths = self.env.get("PYTHONPATH", "").split(os.pathsep)
            added["PYTHONPATH"] = os.pathsep.join(
                str(self.root) if path == str(ROOT) else path for path in paths
            )
        return added

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll ``GET /gc`` until it answers.

        Raises:
            RuntimeError: The process exited or did not answer in time.
        """
        if timeout is None:
            timeout = self.startup_timeout
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None, "start() first"
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            with contextlib.suppress(httpx.TransportError):
                self.collect_garbage()
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{self.name} not ready:\n{self.tail()}")
            time.sleep(0.1)

    def collect_garbage(self) -> None:
        """Ask the server to run ``gc.collect()`` and wait for its answer."""
        with httpx.Client(timeout=10.0, trust_env=False) as client:
            client.get(f"http://{HOST}:{self.port}/gc").raise_for_status()

    def cpu_seconds(self) -> float:
        """CPU time (user + system, all threads) the server has used so far."""
        assert self.process is not None, "start() first"
        return _stat_cpu_seconds(Path(f"/proc/{self.process.pid}/stat"))

    def loop_cpu_seconds(self) -> float:
        """CPU time of the server's main thread alone: uvicorn's event loop
        (the rest is the span export thread and thread pools)."""
        assert self.process is not None, "start() first"
        pid = self.process.pid
        return _stat_cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat"))

    def gc_stats(self) -> dict[str, list[float]]:
        """Collections per generation so far (``counts``) and their ``seconds``."""
        with httpx.Client(timeout=10.0, trust_env=False) as client:
            answer = client.get(f"http://{HOST}:{self.port}/gcstats")
        answer.raise_for_status()
        stats: dict[str, list[float]] = answer.json()
        return stats

    def gc_seconds(self) -> float:
        """Seconds the server has spent collecting garbage since it started."""
        return float(sum(self.gc_stats()["seconds"]))

    def rss_bytes(self) -> int:
        """The server's resident set size, from ``/proc/<pid>/status``."""
        assert self.process is not None, "start() first"
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc/<pid>/status")

    def stop(self) -> None:
        """Terminate the process (kill it if it does not exit in time)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        if self._output is not None:
            self._output.close()
            self._output = None

    def tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            text = self.output_path.read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return "(no output)"


@contextlib.contextmanager
def serving(servers: Iterable[BenchServer]) -> Iterator[None]:
    """Start ``servers`` side by side (see :func:`start_all`); stop them on exit."""
    started = list(servers)
    start_all(started)
    try:
        yield
    finally:
        for server in started:
            server.stop()


def start_all(servers: list[BenchServer]) -> None:
    """Start ``servers`` side by side and wait until every one serves."""
    for server in servers:
        server.start()
    try:
        for server in servers:
            server.wait_ready()
    except BaseException:
        for server in servers:
            server.stop()
        raise


@dataclass
class OtlpSink:
    """``benchmarks.otlp_sink`` in its own process: where the servers export spans."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = field(default=None, init=False)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.otlp_sink", str(self.port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError("the OTLP sink did not start")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            process.wait(timeout=STOP_TIMEOUT)


def delete_redis_keys(prefix: str) -> None:
    """Remove what a channel layer with ``prefix`` left in Redis."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _stat_cpu_seconds(stat_file: Path) -> float:
    """User + system seconds in a ``/proc`` ``stat`` file (process or thread)."""
    # Fields after the command name, which is in parentheses.
    fields = stat_file.read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
