"""Start the demo, run a headless locust scenario against it, stop everything.

``python -m loadtests.run --scenario mixed --users 200 --duration 60 --workers 2``
(``make loadtest`` passes ``SCENARIO``, ``USERS``, ``DURATION``, ``WORKERS``):

1. checks that Redis answers on 127.0.0.1:6379;
2. creates a throw-away database (SQLite file, or PostgreSQL with
   ``--database postgres``), migrates it and creates ``--users`` users with
   tokens (``manage.py loadtest_users``);
3. starts ``--workers`` uvicorn processes of the demo on free loopback ports
   (under ``python -m chanx.serve``, as the container image does),
   sharing that database and one Redis channel layer (a prefix unique to the
   run), and spreads the locust users over them;
4. runs locust as a subprocess, writing CSV, HTML, JSON and a summary JSON to
   ``--reports-dir``;
5. stops the servers, deletes the run's Redis keys and the database, also on
   failure or Ctrl-C, and exits with locust's exit code (non-zero when an SLO
   gate failed).

Options after ``--`` go to locust unchanged, e.g. ``-- --max-p99-ms 250``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from tests.e2e.servers import (
    REPO_ROOT,
    UvicornServer,
    delete_redis_keys,
    demo_env,
    launch,
    manage,
    postgres_database,
    redis_unreachable_reason,
)

LOCUSTFILE = REPO_ROOT / "loadtests" / "locustfile.py"
DEFAULT_REPORTS = REPO_ROOT / "loadtests" / "reports"
#: Scenario -> locust user classes.
SCENARIOS: dict[str, list[str]] = {
    "ping": ["PingUser"],
    "chat": ["ChatUser"],
    "broadcast": ["BroadcastPublisher", "BroadcastReceiver", "Announcer"],
    "churn": ["ChurnUser"],
    "mixed": [
        "PingUser",
        "ChatUser",
        "BroadcastPublisher",
        "BroadcastReceiver",
        "ChurnUser",
        "Announcer",
    ],
}
#: Seconds locust may need beyond ``--duration``: startup, drain, reports.
LOCUST_GRACE = 45.0
SERVER_LOG_TAIL = 200


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Launcher options, and the options after ``--`` meant for locust."""
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="mixed")
    parser.add_argument("--users", type=int, default=200, help="Locust users.")
    parser.add_argument(
        "--spawn-rate", type=float, default=0.0, help="Users/s (default: users/5)."
    )
    parser.add_argument("--duration", type=int, default=60, help="Seconds of load.")
    parser.add_argument(
        "--workers", type=int, choices=(1, 2), default=1, help="uvicorn processes."
    )
    parser.add_argument("--room-size", type=int, default=10, help="Users per room.")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--reports-dir", type=Path, default=DEFAULT_REPORTS)
    args = parser.parse_args(argv)
    if not 1 <= args.users <= 10_000:
        parser.error("--users must be between 1 and 10000")
    if not 1 <= args.duration <= 3600:
        parser.error("--duration must be between 1 and 3600 seconds")
    if args.spawn_rate <= 0:
        args.spawn_rate = max(1.0, args.users / 5)
    return args, extra


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh database URL, removed afterwards."""
    if kind == "postgres":
        with postgres_database(f"chanx_load_{uuid.uuid4().hex}") as url:
            yield url
    else:
        yield f"sqlite:///{workdir / 'loadtest.sqlite3'}"


def locust_command(
    args: argparse.Namespace, hosts: list[str], tokens: Path, prefix: Path
) -> list[str]:
    """The locust invocation for ``args`` against ``hosts``."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        f"{args.duration}s",
        "--host",
        hosts[0],
        "--hosts",
        ",".join(hosts),
        "--tokens-file",
        str(tokens),
        "--room-size",
        str(args.room_size),
        "--csv",
        str(prefix),
        "--html",
        f"{prefix}.html",
        "--json-file",
        str(prefix),
        "--summary-file",
        f"{prefix}_summary.json",
        *SCENARIOS[args.scenario],
    ]


def run_locust(command: list[str], timeout: float, env: dict[str, str]) -> int:
    """Run locust in the foreground; its output goes straight to ours."""
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"loadtests: locust still running after {timeout:.0f}s; killing it")
        process.kill()
        process.wait(timeout=10)
        return 3
    finally:
        # Ctrl-C reaches locust too (same process group); give it time to
        # write its reports, then make sure it is gone.
        if process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def keep_server_logs(servers: list[UvicornServer], prefix: Path) -> list[str]:
    """Copy the tail of each server's log next to the reports; list its problems.

    Returns:
        ``"<server>: <count> x <level> <event>"`` for every warning, error and
        traceback the server logged: they explain failures the clients saw.
    """
    problems: list[str] = []
    for server in servers:
        target = Path(f"{prefix}_uvicorn-{server.name}.log")
        target.write_text(server.log_tail(SERVER_LOG_TAIL) + "\n")
        counts: Counter[str] = Counter()
        with server.log_path.open(errors="replace") as log:
            for line in log:
                counts.update(_problem(line))
        problems.extend(
            f"{server.name}: {count} x {what}" for what, count in counts.most_common()
        )
    return problems


def _problem(line: str) -> list[str]:
    if line.startswith("Traceback"):
        return ["traceback"]
    # Lines are compact JSON ("level":"warning"); a cheap test first.
    if '"warning"' not in line and '"error"' not in line:
        return []
    try:
        record = json.loads(line)
    except ValueError:
        return ["unparsable log line"]
    if not isinstance(record, dict) or record.get("level") not in ("warning", "error"):
        return []
    event = str(record.get("event", "?"))[:80]
    return [f"{record.get('level')} {event}"]


def seed(env: dict[str, str], args: argparse.Namespace, workdir: Path) -> Path:
    """Migrate the database, create the users; returns the tokens file."""
    manage(env, "migrate", "--noinput")
    seeded = manage(
        env, "loadtest_users", "--count", str(args.users),
        "--room-size", str(args.room_size),
    )  # fmt: skip
    tokens = workdir / "tokens.json"
    tokens.write_text(json.dumps(json.loads(seeded.strip().splitlines()[-1])))
    return tokens


def run(args: argparse.Namespace, extra: list[str], prefix: Path) -> int:
    """Start the demo, run locust against it, stop everything; locust's exit code."""
    workdir = Path(tempfile.mkdtemp(prefix="chanx-loadtest-"))
    channels_prefix = f"chanx-load-{uuid.uuid4().hex}"
    servers: list[UvicornServer] = []
    try:
        with database(args.database, workdir) as url:
            env = demo_env(url, channels_prefix)
            tokens = seed(env, args, workdir)
            for number in range(1, args.workers + 1):
                # As the image runs it: startup freeze, draining shutdown.
                servers.append(
                    launch(f"w{number}", env, workdir, launcher="chanx.serve")
                )
            hosts = [server.ws_url for server in servers]
            print(f"loadtests: {prefix.name} against {', '.join(hosts)}", flush=True)
            command = [*locust_command(args, hosts, tokens, prefix), *extra]
            code = run_locust(command, args.duration + LOCUST_GRACE, env)
            for server in servers:
                if not server.stop():
                    print(f"loadtests: server {server.name} had to be killed")
            for problem in keep_server_logs(servers, prefix):
                print(f"loadtests: server log {problem}")
            return code
    finally:
        for server in servers:
            server.stop()
        delete_redis_keys(channels_prefix)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run one load test; returns the process exit code."""
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    reason = redis_unreachable_reason()
    if reason is not None:
        print(f"loadtests: {reason}; start one with `make redis`", file=sys.stderr)
        return 2
    args.reports_dir.mkdir(parents=True, exist_ok=True)
    name = f"{args.scenario}-w{args.workers}-u{args.users}"
    prefix = args.reports_dir.resolve() / name
    try:
        code = run(args, extra, prefix)
    except KeyboardInterrupt:
        print("loadtests: interrupted; servers stopped", file=sys.stderr)
        return 130
    print(f"loadtests: reports in {prefix}* (exit code {code})", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
