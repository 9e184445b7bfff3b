"""Locust users for the chanx demo: ping, room chat, broadcast, churn, announcements.

Run it through ``python -m loadtests.run`` (``make loadtest``), which starts the
demo, creates the users' tokens and passes the options below; by hand::

    locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 30s \\
        --host ws://127.0.0.1:8000 --tokens-file tokens.json ChatUser

User classes (pick some on the command line; all of them run otherwise):
``PingUser``, ``ChatUser``, ``BroadcastPublisher`` + ``BroadcastReceiver``,
``ChurnUser`` and ``Announcer``. See ``loadtests/README.md`` for the
request names they report and for the SLO gates checked on exit.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import sys
import time
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from locust import User, between, events, task
from locust.clients import HttpSession
from locust.env import Environment
from locust.stats import CSV_STATS_INTERVAL_SEC

# ``locust -f loadtests/locustfile.py`` puts loadtests/ on sys.path, not the
# repository root that the ``loadtests`` package lives in.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from loadtests.gates import Samples, load_thresholds  # noqa: E402
from loadtests.ledger import SentLedger, encode_body  # noqa: E402
from loadtests.options import (  # noqa: E402
    add_options,
    options_of,
    threshold_args,
)
from loadtests.report import summarize  # noqa: E402
from loadtests.wsclient import (  # noqa: E402
    WS,
    ExchangeError,
    SessionConfig,
    WsSession,
)

logger = logging.getLogger("loadtests")

ANNOUNCEMENTS = "announcements"
LEDGER = SentLedger()
SAMPLES = Samples()
_user_ids = itertools.count()
_chat_ids = itertools.count()


class _Plan:
    """Tokens, rooms and hosts, read once from the command line."""

    def __init__(self, options: Namespace, default_host: str | None) -> None:
        hosts = [h.strip() for h in options.hosts.split(",") if h.strip()]
        self.hosts: list[str] = hosts or ([default_host] if default_host else [])
        if not self.hosts:
            raise SystemExit("loadtests: give --host or --hosts (ws://127.0.0.1:PORT)")
        data: dict[str, Any] = {}
        if options.tokens_file:
            try:
                data = json.loads(Path(options.tokens_file).read_text())
            except (OSError, ValueError) as exc:
                raise SystemExit(
                    f"loadtests: cannot read --tokens-file {options.tokens_file}: "
                    f"{exc} (expected `manage.py loadtest_users` output)"
                ) from None
        self.tokens: list[str] = [user["token"] for user in data.get("users", [])]
        self.chat_rooms: list[str] = data.get("chat_rooms", [])
        self.broadcast_room: str = data.get("broadcast_room", "")
        self.churn_room: str = data.get("churn_room", "")

    def host(self, index: int) -> str:
        return self.hosts[index % len(self.hosts)].rstrip("/")

    def token(self, index: int) -> str | None:
        return self.tokens[index % len(self.tokens)] if self.tokens else None


_plan: _Plan | None = None
#: Monotonic time the test began stopping (users send nothing after it).
_stopping_at = 0.0


def _on_init(environment: Environment, **_: Any) -> None:
    global _plan
    _plan = _Plan(options_of(environment), environment.host)
    try:
        load_thresholds(**threshold_args(environment))  # fail now, not at the end
    except ValueError as exc:
        raise SystemExit(f"loadtests: {exc}") from None
    needs_tokens = [c.__name__ for c in environment.user_classes if c is not PingUser]
    if needs_tokens and not _plan.tokens:
        raise SystemExit(
            f"loadtests: {', '.join(needs_tokens)} need --tokens-file "
            "(output of `manage.py loadtest_users`; loadtests.run creates it)"
        )


def _on_test_stopping(**_: Any) -> None:
    global _stopping_at
    _stopping_at = time.monotonic()


def _origin(ws_url: str) -> str:
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}"


class _WsUser(User):
    """Base: one connection at a time, reopened after it is lost."""

    abstract = True
    #: Token in ``?token=`` (what browsers can do), else in the header.
    token_in_query = True

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        assert _plan is not None
        self.plan = _plan
        self.index = next(_user_ids)
        self.connections = 0
        self.session: WsSession | None = None

    def path(self) -> str:
        raise NotImplementedError

    def streams(self) -> dict[str, str] | None:
        return None

    def record(
        self, kind: str, name: str, ms: float, length: int, exc: Exception | None
    ) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=ms,
            response_length=length,
            exception=exc,
            context={},
        )
        if exc is None:
            SAMPLES.add(f"{kind} {name}", ms)

    def new_session(self) -> WsSession:
        options = options_of(self.environment)
        host, token = self.plan.host(self.index), self.plan.token(self.index)
        query = f"?token={token}" if token and self.token_in_query else ""
        config = SessionConfig(
            url=f"{host}{self.path()}{query}",
            origin=_origin(host),
            token=None if self.token_in_query else token,
            timeout=options.reply_timeout,
        )
        self.connections += 1
        me = f"{type(self).__name__}-{self.index}-{self.connections}"
        return WsSession(config, self.record, me, LEDGER, self.streams())

    def connected(self) -> WsSession:
        """The open session; (re)connects when there is none or it was lost."""
        if self.session is not None and not self.session.alive:
            self.session.close()
            self.session = None
        if self.session is None:
            session = self.new_session()
            session.open()
            session.start_reader()
            self.session = session
        return self.session

    def on_stop(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            options = options_of(self.environment)
            not_before = _stopping_at + options.settle_seconds
            session.close(options.drain_seconds, not_before)


class PingUser(_WsUser):
    """``/ws/ping/`` with the token in the header; ``ping`` round trips."""

    weight = 2
    wait_time = between(0.5, 1.5)
    token_in_query = False

    def path(self) -> str:
        return "/ws/ping/"

    @task
    def ping(self) -> None:
        with contextlib.suppress(ExchangeError):  # already recorded
            self.connected().ping()


class ChatUser(_WsUser):
    """A member of a room of ``--room-size`` ChatUsers: numbered chat lines."""

    weight = 4
    wait_time = between(1.0, 3.0)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        rooms = self.plan.chat_rooms or ["lt-room-0"]
        size = max(1, options_of(environment).room_size)
        self.room = rooms[(next(_chat_ids) // size) % len(rooms)]

    def path(self) -> str:
        return f"/ws/chat/{self.room}/"

    def streams(self) -> dict[str, str]:
        return {self.room: "chat", ANNOUNCEMENTS: "announce"}

    @task
    def chat(self) -> None:
        with contextlib.suppress(ExchangeError):  # already recorded
            self.connected().chat(self.room, "chat")


class _BroadcastMember(_WsUser):
    abstract = True

    def path(self) -> str:
        return f"/ws/chat/{self.plan.broadcast_room or 'lt-broadcast'}/"

    def streams(self) -> dict[str, str]:
        room = self.plan.broadcast_room or "lt-broadcast"
        return {room: "broadcast", ANNOUNCEMENTS: "announce"}


class BroadcastPublisher(_BroadcastMember):
    """The one sender of the broadcast room (``--broadcast-interval``)."""

    fixed_count = 1

    def wait_time(self) -> float:
        return float(options_of(self.environment).broadcast_interval)

    @task
    def publish(self) -> None:
        room = self.plan.broadcast_room or "lt-broadcast"
        with contextlib.suppress(ExchangeError):  # already recorded
            self.connected().chat(room, "broadcast")


class BroadcastReceiver(_BroadcastMember):
    """Listens in the broadcast room; pings now and then to stay busy."""

    weight = 3
    wait_time = between(3.0, 6.0)

    @task
    def listen(self) -> None:
        with contextlib.suppress(ExchangeError):  # already recorded
            self.connected().ping()


class ChurnUser(_WsUser):
    """Connect, authenticate, disconnect, again: ``churn cycle``."""

    weight = 1
    wait_time = between(0.5, 1.5)

    def path(self) -> str:
        return f"/ws/chat/{self.plan.churn_room or 'lt-churn'}/"

    @task
    def cycle(self) -> None:
        started = time.perf_counter()
        session = self.new_session()
        try:
            session.open()
        except ExchangeError:
            return  # recorded as a connect+auth failure
        closed = session.close()
        error = None if closed else ConnectionError("no close frame from the server")
        self.record(WS, "churn cycle", _ms_since(started), 0, error)


class Announcer(User):
    """Numbered ``POST /api/announce/``: every room client gets the event."""

    fixed_count = 1

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        assert _plan is not None
        index = next(_user_ids)
        self.me = f"Announcer-{index}"
        self.token = _plan.token(index)
        http_base = _origin(_plan.host(index))
        self.client = HttpSession(http_base, environment.events.request, self)
        self.client.trust_env = False  # loopback only, never through a proxy
        self.seq = 0

    def wait_time(self) -> float:
        return float(options_of(self.environment).announce_interval)

    @task
    def announce(self) -> None:
        self.seq += 1
        begun = time.monotonic()
        body = {"content": encode_body(self.me, self.seq, "announce"), "level": "info"}
        headers = {"Authorization": f"Token {self.token}"}
        timeout = options_of(self.environment).reply_timeout
        response = self.client.post(
            "/api/announce/", json=body, headers=headers, timeout=timeout
        )
        if response.ok:
            LEDGER.record(self.me, ANNOUNCEMENTS, self.seq, begun)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _on_quitting(environment: Environment, **_: Any) -> None:
    # Locust's CSV writer refreshes every CSV_STATS_INTERVAL_SEC: let it
    # capture the losses reported while the users stopped.
    time.sleep(CSV_STATS_INTERVAL_SEC + 0.3)
    thresholds = load_thresholds(**threshold_args(environment))
    summary = summarize(environment.stats, SAMPLES, thresholds)
    print(summary.text(), flush=True)
    target = options_of(environment).summary_file
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(json.dumps(summary.as_dict(), indent=2))
    runner = environment.runner
    crashed = runner is not None and bool(runner.exceptions)
    if not summary.verdict.passed:
        environment.process_exit_code = 1
    elif crashed:
        logger.error("loadtest_user_code_raised; see the exceptions above")
        environment.process_exit_code = 2
    else:
        environment.process_exit_code = 0


def _listen(hook: Any, handler: Callable[..., None]) -> None:
    # Locust's EventHook.add_listener has no annotations.
    hook.add_listener(handler)


_listen(events.init_command_line_parser, add_options)
_listen(events.init, _on_init)
_listen(events.test_stopping, _on_test_stopping)
_listen(events.quitting, _on_quitting)
