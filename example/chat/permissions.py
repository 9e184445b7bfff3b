"""Object permissions of the demo consumers."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from chat.models import GroupChat, Room


class IsRoomMember(BasePermission):
    """Allows access to a room only to its members."""

    message = "You are not a member of this room."

    def has_object_permission(self, request: Request, view: Any, obj: Room) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and obj.members.filter(pk=user.pk).exists()
        )


class IsGroupChatMember(BasePermission):
    """Allows access to a group chat only to users with a ``ChatMember`` row."""

    message = "You are not a member of this group chat."

    def has_object_permission(
        self, request: Request, view: Any, obj: GroupChat
    ) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and obj.members.filter(user_id=user.pk).exists()
        )
