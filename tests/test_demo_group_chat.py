"""The demo's group chat, through the demo's own ASGI stack (origin check, auth).

Unlike the guide's version, it refuses to join or post to groups of chats the
user is not a member of.
"""

from __future__ import annotations

from typing import Any

from chat.models import ChatMember, ChatMessage, GroupChat
from chat.utils import name_group_chat
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from chanx.testing import WebsocketCommunicator, WebsocketTestCase

ORIGIN = (b"origin", b"http://127.0.0.1")


class DemoGroupChatTests(WebsocketTestCase):
    def setUp(self) -> None:
        self.tokens: dict[str, str] = {}
        self.chats: dict[str, GroupChat] = {}
        for name in ("alice", "bob"):
            user = User.objects.create_user(name, password="pw")
            self.tokens[name] = Token.objects.create(user=user).key
        alice, bob = (
            User.objects.get(username="alice"),
            User.objects.get(username="bob"),
        )
        for title, members in (
            ("team", [alice, bob]),
            ("side", [alice]),
            ("bobs", [bob]),
        ):
            chat = GroupChat.objects.create(title=title)
            for user in members:
                ChatMember.objects.create(group_chat=chat, user=user)
            self.chats[title] = chat

    async def join(self, user: str, chat: str) -> WebsocketCommunicator:
        auth = (b"authorization", f"Token {self.tokens[user]}".encode())
        communicator = self.create_communicator(
            ws_path=f"/ws/groupchat/{self.chats[chat].pk}/", headers=[ORIGIN, auth]
        )
        assert (await communicator.connect())[0]
        await communicator.assert_authenticated_status_ok()
        return communicator

    async def test_joining_a_group_of_another_users_chat_is_refused(self) -> None:
        alice = await self.join("alice", "team")
        group = name_group_chat(self.chats["bobs"].pk)
        await alice.send_json_to(
            {"action": "join_group", "payload": {"group_name": group}}
        )
        [error] = await alice.receive_until_action("error")
        assert error["payload"] == [
            {
                "type": "group_forbidden",
                "loc": ["payload", "group_name"],
                "msg": "You are not a member of that group chat",
            }
        ]

    async def test_posting_to_a_group_the_connection_is_not_in_is_refused(self) -> None:
        bob = await self.join("bob", "team")
        frame: dict[str, Any] = {
            "action": "new_chat_message",
            "payload": {"content": "sneaky", "groups": ["announcements"]},
        }
        await bob.send_json_to(frame)
        [error] = await bob.receive_until_action("error")
        assert error["payload"][0]["type"] == "group_forbidden"
        assert not await ChatMessage.objects.filter(content="sneaky").aexists()

    async def test_member_joins_own_chats_group_and_receives_its_messages(self) -> None:
        alice_team = await self.join("alice", "team")
        alice_side = await self.join("alice", "side")
        side_group = name_group_chat(self.chats["side"].pk)
        payload = {"group_name": side_group}
        await alice_team.send_json_to({"action": "join_group", "payload": payload})
        # The completion frame says the join was handled: no error before it.
        assert await alice_team.receive_all_json() == []
        await alice_side.send_json_to(
            {"action": "new_chat_message", "payload": {"content": "over here"}}
        )
        relayed = await alice_team.receive_until_action("member_message")
        assert relayed[-1]["payload"]["content"] == "over here"
        assert (relayed[-1]["is_mine"], relayed[-1]["is_current"]) == (True, False)
