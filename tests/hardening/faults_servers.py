"""Servers for the fault e2e tests: an own Redis to stop, the draining launcher.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.servers import (
    EXAMPLE_DIR,
    HOST,
    STOP_TIMEOUT,
    UvicornServer,
    demo_env,
    free_port,
    manage,
    redis_unreachable_reason,
    seed_tokens,
)

REDIS_SERVER = "/usr/bin/redis-server"
FAULTS_SETTINGS = "tests.hardening.faults_settings"


@dataclass
class RedisProcess:
    """A ``redis-server`` of the test's own, stopped and restarted by pid.

    No persistence: a restart loses every key, as a crashed cache would.
    """

    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start on :attr:`port` (the same one after a stop) and wait for PONG."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                *(REDIS_SERVER, "--bind", HOST, "--port", str(self.port)),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while redis_unreachable_reason(HOST, self.port) is not None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on {self.port}")
            time.sleep(0.05)

    def stop(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stop the process with ``sig`` and wait until it is gone."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            process.wait(timeout=STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
            self._log = None


class SilentCollector:
    """A "collector" on 127.0.0.1 that accepts connections and never answers.

    An exporter posting to it waits for its full timeout, as it would for a
    collector that hangs.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server((HOST, 0))
        self._accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self._listener.accept()
                self._accepted.append(conn)

    def __enter__(self) -> SilentCollector:
        self._thread.start()
        return self

    @property
    def connections(self) -> int:
        """How many connections exporters opened so far."""
        return len(self._accepted)

    def __exit__(self, *exc: object) -> None:
        # shutdown() wakes the accept() blocked in the thread; close() does not.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in self._accepted:
            conn.close()


def faults_env(workdir: Path, redis_url: str, **extra: str) -> dict[str, str]:
    """Demo environment on a fresh SQLite database, migrated and seeded."""
    env = demo_env(f"sqlite:///{workdir / 'db.sqlite3'}", "chanx-faults")
    env.update(REDIS_URL=redis_url, DJANGO_SETTINGS_MODULE=FAULTS_SETTINGS, **extra)
    env.pop("METRICS_TOKEN", None)
    manage(env, "migrate", "--noinput")
    return env


@dataclass
class ServeSetup:
    """What a module's ``chanx.serve`` tests share: a directory and an env."""

    workdir: Path
    env: dict[str, str]


@contextlib.contextmanager
def redis_and_env(workdir: Path, **extra: str) -> Iterator[dict[str, str]]:
    """A Redis of its own and :func:`faults_env` pointing at it, for a module."""
    redis = RedisProcess(workdir / "redis.log")
    redis.start()
    try:
        yield faults_env(workdir, redis.url, **extra)
    finally:
        redis.stop()


def tokens_for(env: dict[str, str]) -> dict[str, str]:
    return seed_tokens(env)


@dataclass
class ServeProcess(UvicornServer):
    """An app under ``python -m chanx.serve`` (the draining launcher)."""

    app: str = "config.asgi:application"

    def start(self) -> None:
        self._log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "chanx.serve", self.app),
                *("--host", HOST, "--port", str(self.port), "--lifespan", "off"),
                *self.extra_args,
            ],
            cwd=EXAMPLE_DIR,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )


def launch_serve(
    name: str, env: dict[str, str], log_dir: Path, app: str, extra_args: list[str]
) -> ServeProcess:
    """Start :class:`ServeProcess` on a free port and wait until it serves."""
    server = ServeProcess(
        name, free_port(), env, log_dir / f"serve-{name}.log", extra_args
    )
    server.app = app
    server.start()
    try:
        server.wait_ready()
    except RuntimeError:
        server.stop()
        raise
    return server


def metric(server: UvicornServer, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    text = httpx.get(f"{server.http_url}/metrics", timeout=5, trust_env=False).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
        and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def readyz_status(server: UvicornServer) -> int:
    response = httpx.get(f"{server.http_url}/readyz", timeout=10, trust_env=False)
    return response.status_code


def logged_records(server: UvicornServer) -> list[dict[str, Any]]:
    """Every JSON log line (with an ``event``) the server wrote so far."""
    records = []
    for line in server.log_path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and "event" in record:
                records.append(record)
    return records


def logged_events(server: UvicornServer) -> list[str]:
    """The ``event`` of every JSON log line the server wrote so far."""
    return [str(record["event"]) for record in logged_records(server)]


def rss_kib(pid: int) -> int:
    """Resident memory of process ``pid`` in KiB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


async def eventually(
    check: Callable[[], Awaitable[object]], timeout: float, what: str
) -> object:
    """Await ``check()`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)
