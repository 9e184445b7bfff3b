"""The guide's "Real-World Example": a group chat backed by the database."""

from __future__ import annotations

from typing import Any, cast

from chanx.errors import detail
from chanx.generic.websocket import AsyncJsonWebsocketConsumer
from chanx.messages.incoming import PingMessage
from chanx.messages.outgoing import PongMessage
from chat.messages.chat import (
    ChatIncomingMessage,
    JoinGroupMessage,
    NewChatMessage,
    NewChatMessagePayload,
)
from chat.messages.group import MemberMessage
from chat.models import ChatMember, ChatMessage, GroupChat
from chat.permissions import IsGroupChatMember
from chat.serializers import ChatMessageSerializer
from chat.utils import name_group_chat


class ChatDetailConsumer(
    AsyncJsonWebsocketConsumer[ChatIncomingMessage, None, MemberMessage, GroupChat]
):
    """Group chat at ``/ws/groupchat/<pk>/`` for the chat's members.

    Differs from the guide in one respect: a client may only join, and post
    to, groups of chats it is a member of; the guide lets any member subscribe
    to, and post into, any group name. Groups joined with ``join_group`` are
    appended to ``self.groups``, so they are left on disconnect.
    """

    permission_classes = [IsGroupChatMember]
    queryset = GroupChat.objects.get_queryset()

    member: ChatMember
    groups: list[str]
    group_name: str

    async def build_groups(self) -> list[str]:
        """Join the chat's group."""
        assert self.obj
        self.group_name = name_group_chat(self.obj.pk)
        return [self.group_name]

    async def post_authentication(self) -> None:
        """Load the connection's membership: the sender of its messages."""
        assert self.user is not None
        assert self.obj
        self.member = await self.obj.members.select_related("user").aget(user=self.user)

    async def receive_message(
        self, message: ChatIncomingMessage, **kwargs: Any
    ) -> None:
        """Answer pings, store and broadcast new messages, join other chats."""
        match message:
            case PingMessage():
                await self.send_message(PongMessage())
            case NewChatMessage(payload=payload):
                await self._post(payload)
            case JoinGroupMessage(payload=payload):
                await self._join(payload.group_name)

    async def _post(self, payload: NewChatMessagePayload) -> None:
        assert self.obj
        groups = payload.groups
        if groups is not None and not set(groups) <= set(self.groups):
            message = "You can only post to groups this connection is in"
            await self._forbid(message, ["payload", "groups"])
            return
        new_message = await ChatMessage.objects.acreate(
            content=payload.content, group_chat_id=self.obj.pk, sender=self.member
        )
        message_serializer = ChatMessageSerializer(instance=new_message)
        await self.send_group_message(
            MemberMessage(payload=cast(Any, message_serializer.data)),
            groups=groups,
            exclude_current=False,
        )

    async def _join(self, group_name: str) -> None:
        if group_name in self.groups:
            return
        if group_name not in await self._allowed_groups():
            message = "You are not a member of that group chat"
            await self._forbid(message, ["payload", "group_name"])
            return
        await self.channel_layer.group_add(group_name, self.channel_name)
        self.groups.append(group_name)

    async def _forbid(self, message: str, loc: list[str | int]) -> None:
        await self.send_errors([detail("group_forbidden", message, loc)])

    async def _allowed_groups(self) -> set[str]:
        pks = GroupChat.objects.filter(members__user=self.user).values_list(
            "pk", flat=True
        )
        return {name_group_chat(pk) async for pk in pks}
