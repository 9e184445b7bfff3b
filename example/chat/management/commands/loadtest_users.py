"""``manage.py loadtest_users``: users, tokens and rooms for ``loadtests/``.

Creates ``--count`` users named ``<prefix>-0000``, ``<prefix>-0001``, ... with
DRF tokens and no usable password (hashing hundreds of passwords would take
minutes and nobody logs in with them), plus the rooms the locust users join:
chat rooms of ``--room-size`` members each, one broadcast room and one churn
room. Every load-test user is a member of every load-test room, so the
locustfile may hand any token to any room. Safe to run repeatedly.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

from chat.models import Room

MAX_USERS = 10_000


class Command(BaseCommand):
    """Create load-test users, tokens and rooms; print them as JSON."""

    help = (
        "Create COUNT users with DRF tokens and the rooms of the load test "
        "(chat rooms of ROOM_SIZE, a broadcast room, a churn room); print JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=200, help="Users to create.")
        parser.add_argument(
            "--room-size", type=int, default=10, help="Users per chat room."
        )
        parser.add_argument(
            "--prefix", default="lt", help="Prefix of user and room names."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count: int = options["count"]
        room_size: int = options["room_size"]
        prefix: str = options["prefix"]
        if not 1 <= count <= MAX_USERS:
            raise CommandError(f"--count must be between 1 and {MAX_USERS}")
        if room_size < 1:
            raise CommandError("--room-size must be at least 1")
        data = self._seed(count, room_size, prefix)
        self.stdout.write(json.dumps(data))

    @transaction.atomic
    def _seed(self, count: int, room_size: int, prefix: str) -> dict[str, Any]:
        user_model = get_user_model()
        names = [f"{prefix}-{index:04d}" for index in range(count)]
        existing = set(
            user_model.objects.filter(username__in=names).values_list(
                "username", flat=True
            )
        )
        new_users = []
        for name in names:
            if name not in existing:
                user = user_model(username=name)
                user.set_unusable_password()
                new_users.append(user)
        user_model.objects.bulk_create(new_users)
        users = list(user_model.objects.filter(username__in=names).order_by("username"))
        keys = _tokens(users)
        chat_rooms = [
            f"{prefix}-room-{index}" for index in range(math.ceil(count / room_size))
        ]
        broadcast_room, churn_room = f"{prefix}-broadcast", f"{prefix}-churn"
        for name in [*chat_rooms, broadcast_room, churn_room]:
            room, _ = Room.objects.get_or_create(name=name)
            room.members.add(*users)
        return {
            "users": [
                {"username": user.get_username(), "token": keys[user.pk]}
                for user in users
            ],
            "chat_rooms": chat_rooms,
            "broadcast_room": broadcast_room,
            "churn_room": churn_room,
        }


def _tokens(users: list[Any]) -> dict[int, str]:
    """User pk -> DRF token key, creating the missing tokens."""
    with_token = set(
        Token.objects.filter(user__in=users).values_list("user_id", flat=True)
    )
    # bulk_create skips Token.save(), which is where keys are generated.
    Token.objects.bulk_create(
        [
            Token(user=user, key=Token.generate_key())
            for user in users
            if user.pk not in with_token
        ]
    )
    return dict(Token.objects.filter(user__in=users).values_list("user_id", "key"))
