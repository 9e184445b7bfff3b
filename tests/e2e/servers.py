"""Run the demo project (``example/``) in real uvicorn processes for e2e tests.

Every helper talks to 127.0.0.1 only. The servers get their configuration
from the environment built by :func:`demo_env`, exactly as a deployment would.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = REPO_ROOT / "example"
HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_URL = f"redis://{HOST}:{REDIS_PORT}/0"

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
COMMAND_TIMEOUT = 120.0
_POLL_INTERVAL = 0.05


def redis_unreachable_reason(host: str = HOST, port: int = REDIS_PORT) -> str | None:
    """``None`` if Redis answers ``PING`` on ``host:port``, else why not."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(2)
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return f"cannot talk to Redis on {host}:{port}: {exc}"
    if not reply.startswith(b"+PONG"):
        return f"unexpected reply to PING from {host}:{port}: {reply!r}"
    return None


def delete_redis_keys(prefix: str, host: str = HOST, port: int = REDIS_PORT) -> None:
    """Delete the keys a channel layer with ``prefix`` left behind."""
    import redis

    client = redis.Redis(host=host, port=port, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def demo_env(database_url: str, channels_prefix: str) -> dict[str, str]:
    """Environment for ``manage.py`` and uvicorn: demo settings, Redis, shared DB."""
    python_path = [str(REPO_ROOT), str(EXAMPLE_DIR)]
    if os.environ.get("PYTHONPATH"):
        python_path.append(os.environ["PYTHONPATH"])
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CHANNELS_PREFIX": channels_prefix,
        "ALLOWED_HOSTS": f"{HOST},localhost",
        "DEBUG": "0",
        # chanx and the demo import from the checkout, installed or not.
        "PYTHONPATH": os.pathsep.join(python_path),
        "PYTHONUNBUFFERED": "1",
    }


def manage(env: dict[str, str], *args: str) -> str:
    """Run ``manage.py <args>`` in ``example/`` and return its stdout.

    Raises:
        RuntimeError: The command failed; the message has its output.
    """
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} exited with {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result.stdout


def seed_tokens(env: dict[str, str]) -> dict[str, str]:
    """Run ``seed_demo --json`` and return username -> DRF token key."""
    output = manage(env, "seed_demo", "--json")
    data = json.loads(output.strip().splitlines()[-1])
    return {name: user["token"] for name, user in data["users"].items()}


def require_redis() -> None:
    """Fail the calling test (not error it) when Redis does not answer."""
    reason = redis_unreachable_reason()
    if reason is not None:
        import pytest  # only under pytest; the load-test launcher reuses this module

        pytest.fail(
            f"this test needs Redis: {reason}. "
            "Start one with `make redis` (scripts/ensure-redis.sh).",
            pytrace=False,
        )


@contextmanager
def seeded_demo(
    workdir: Path, database_url: str | None = None, **extra: str
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """The demo's environment on Redis under a prefix of its own, migrated and seeded.

    Yields the environment (``extra`` added) and username -> token; deletes
    the prefix's Redis keys afterwards. The database defaults to a fresh
    SQLite file in ``workdir``.
    """
    require_redis()
    prefix = f"chanx-e2e-{uuid.uuid4().hex}"
    url = database_url or f"sqlite:///{workdir / 'db.sqlite3'}"
    env = {**demo_env(url, prefix), **extra}
    manage(env, "migrate", "--noinput")
    try:
        yield env, seed_tokens(env)
    finally:
        delete_redis_keys(prefix)


@dataclass
class UvicornServer:
    """One uvicorn process serving ``config.asgi:application``.

    Attributes:
        name: Label used in the log file name and in error messages.
        port: Port it listens on (127.0.0.1).
        env: Its environment (see :func:`demo_env`).
        log_path: Where its stdout and stderr go.
    """

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    #: More uvicorn options, e.g. ``["--workers", "2"]``.
    extra_args: list[str] = field(default_factory=list)
    #: The module run with ``python -m``: ``uvicorn`` or ``chanx.serve``.
    launcher: str = "uvicorn"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log_file: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:<port>``: base URL, and the Origin browsers would send."""
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return f"ws://{HOST}:{self.port}"

    def start(self) -> None:
        """Start the process; returns before it is ready (see :meth:`wait_ready`)."""
        # A file, not a pipe: nobody reads a pipe while the tests run, and a
        # full pipe would block the server's logging.
        self._log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                self.launcher,
                "config.asgi:application",
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--lifespan",
                "off",
                *self.extra_args,
            ],
            cwd=EXAMPLE_DIR,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Poll ``/healthz`` until the app answers HTTP on the port.

        Raises:
            RuntimeError: The process exited or did not answer within ``timeout``.
        """
        assert self.process is not None, "start() the server first"
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise RuntimeError(
                        f"server {self.name} exited with {code} during startup\n"
                        f"{self.log_tail()}"
                    )
                try:
                    # The app module is imported (Django set up) once anything
                    # answers; /healthz does without a 401 warning in the log.
                    client.get(f"{self.http_url}/healthz")
                except httpx.TransportError:
                    if time.monotonic() >= deadline:
                        raise RuntimeError(
                            f"server {self.name} not ready on port {self.port} "
                            f"after {timeout}s\n{self.log_tail()}"
                        ) from None
                    time.sleep(_POLL_INTERVAL)
                else:
                    return

    def stop(self) -> bool:
        """Terminate the process, killing it if it does not exit in time.

        Returns:
            False if it had to be killed: something kept it from shutting down.
        """
        process, self.process = self.process, None
        graceful = True
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                graceful = False
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return graceful

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the server's output."""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return "(no log)"


def launch(
    name: str,
    env: dict[str, str],
    log_dir: Path,
    attempts: int = 3,
    extra_args: list[str] | None = None,
    launcher: str = "uvicorn",
) -> UvicornServer:
    """Start a server on a free port and wait until it serves.

    Another process may take the port between :func:`free_port` and uvicorn's
    bind; then a new port is tried.
    """
    for attempt in range(1, attempts + 1):
        server = UvicornServer(
            name,
            free_port(),
            env,
            log_dir / f"uvicorn-{name}.log",
            extra_args or [],
            launcher,
        )
        server.start()
        try:
            server.wait_ready()
        except RuntimeError:
            server.stop()
            if (
                attempt < attempts
                and "address already in use" in server.log_tail().lower()
            ):
                continue
            raise
        return server
    raise AssertionError("unreachable")


POSTGRES_ADMIN_DSN = f"host={HOST} port=5432 user=postgres dbname=postgres"


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """Create database ``name`` on the local PostgreSQL, yield its URL, drop it.

    Raises:
        RuntimeError: PostgreSQL does not answer (``make postgres`` starts it).
    """
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"the PostgreSQL e2e run needs PostgreSQL on {HOST}:5432 ({exc}); "
            "start it with `make postgres` (scripts/ensure-postgres.sh)"
        ) from None
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgres://postgres@{HOST}:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
