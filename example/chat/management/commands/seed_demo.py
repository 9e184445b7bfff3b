"""``manage.py seed_demo``: demo users, tokens and rooms (safe to run repeatedly)."""

from __future__ import annotations

import json
import os
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

from chat.models import Room

DEMO_PASSWORD = "demo-password"
# username -> is_staff
DEMO_USERS = {"alice": False, "bob": False, "staff": True}
# room name -> member usernames
DEMO_ROOMS = {"lobby": ["alice", "bob"], "private": ["alice"]}


class Command(BaseCommand):
    """Create the demo users (with DRF tokens) and rooms, then print how to connect."""

    help = (
        "Create users alice, bob and staff (password 'demo-password') with DRF "
        "tokens, room 'lobby' (alice, bob) and room 'private' (alice)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Print nothing.")
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the users, passwords and tokens as one JSON object.",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("PORT", "8000")),
            help="Port used in the printed examples (default: $PORT or 8000).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tokens = self._seed()
        if options["quiet"]:
            return
        if options["json"]:
            users = {
                name: {"password": DEMO_PASSWORD, "token": key}
                for name, key in tokens.items()
            }
            self.stdout.write(json.dumps({"users": users, "rooms": DEMO_ROOMS}))
            return
        self._print_help(tokens, options["port"])

    @transaction.atomic
    def _seed(self) -> dict[str, str]:
        user_model = get_user_model()
        tokens: dict[str, str] = {}
        users: dict[str, AbstractUser] = {}
        for username, is_staff in DEMO_USERS.items():
            user, _ = user_model.objects.get_or_create(username=username)
            assert isinstance(user, AbstractUser)
            changed = user.is_staff != is_staff
            user.is_staff = is_staff
            if not user.check_password(DEMO_PASSWORD):
                user.set_password(DEMO_PASSWORD)
                changed = True
            if changed:
                user.save()
            token, _ = Token.objects.get_or_create(user=user)
            tokens[username] = token.key
            users[username] = user
        for name, members in DEMO_ROOMS.items():
            room, _ = Room.objects.get_or_create(name=name)
            room.members.set([users[m] for m in members])
        return tokens

    def _print_help(self, tokens: dict[str, str], port: int) -> None:
        out = self.stdout.write
        base = f"127.0.0.1:{port}"
        out(self.style.SUCCESS("Demo data ready."))
        out(f"Users (password for all: {DEMO_PASSWORD}):")
        for username, key in tokens.items():
            out(f"  {username:<6} token {key}")
        out("Rooms: lobby (alice, bob), private (alice only)")
        out("")
        out("Connect as alice (websockets client, sends an allowed Origin):")
        uri = f"ws://{base}/ws/chat/lobby/?token={tokens['alice']}"
        # Shell-quoted for bash: \" inside the double-quoted program is a quote.
        out(
            '  python -c "\n'
            "import sys, websockets.sync.client as c\n"
            f"with c.connect(sys.argv[1], origin='http://{base}') as ws:\n"
            "    print(ws.recv())\n"
            '    ws.send(\'{\\"action\\": \\"chat\\", '
            '\\"payload\\": {\\"content\\": \\"hi\\"}}\')\n'
            "    print(ws.recv())\n"
            f'" "{uri}"'
        )
        out("")
        out(
            "The interactive `python -m websockets` client sends no Origin header, "
            "and Channels' AllowedHostsOriginValidator refuses such a handshake "
            "(HTTP 403) unless ALLOWED_HOSTS contains '*'. For a local try only:"
        )
        out(f"  ALLOWED_HOSTS='*' make run PORT={port}")
        out(f'  python -m websockets "{uri}"')
        out('  > {"action": "chat", "payload": {"content": "hi"}}')
        out("")
        out("Send an announcement to every connected room client:")
        out(
            f"  curl -X POST http://{base}/api/announce/ "
            f"-H 'Authorization: Token {tokens['alice']}' "
            "-H 'Content-Type: application/json' "
            '-d \'{"content": "hello", "level": "info"}\''
        )
