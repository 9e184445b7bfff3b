"""Every code example of the consumer guide, run as written."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from chat.models import ChatMember, ChatMessage, GroupChat, Room
from django.contrib.auth.models import User
from django.test import RequestFactory
from structlog.testing import capture_logs

from chanx.messages.incoming import PingMessage
from chanx.routing import path
from chanx.testing import WebsocketCommunicator, WebsocketTestCase
from tests.guide import channel_events, group_messaging
from tests.guide.context import (
    ConfiguredConsumer,
    ContextConsumer,
    ErrorHandlingConsumer,
)
from tests.guide.generics import FullConsumer, HandlingConsumer, SimpleConsumer
from tests.guide.messages import ChatMessage as ChatMsg
from tests.guide.messages import ChatPayload, NotificationMessage
from tests.guide.minimal import MyConsumer
from tests.guide.real_world import ChatDetailConsumer
from tests.guide.secure import SecureConsumer

router = AuthMiddlewareStack(
    URLRouter(
        [
            path("ws/minimal/", MyConsumer.as_asgi()),
            path("ws/secure/<int:pk>/", SecureConsumer.as_asgi()),
            path("ws/simple/", SimpleConsumer.as_asgi()),
            path("ws/handling/", HandlingConsumer.as_asgi()),
            path("ws/group/<str:room_id>/", group_messaging.ChatConsumer.as_asgi()),
            path("ws/events/", channel_events.ChatConsumer.as_asgi()),
            path("ws/context/<int:pk>/", ContextConsumer.as_asgi()),
            path("ws/errors/", ErrorHandlingConsumer.as_asgi()),
            path("ws/configured/<int:pk>/", ConfiguredConsumer.as_asgi()),
            path("ws/groupchat/<int:pk>/", ChatDetailConsumer.as_asgi()),
        ]
    )
)


class GuideTestCase(WebsocketTestCase):
    router = router

    def setUp(self) -> None:
        self.alice = User.objects.create_user("alice", password="pw")
        self.bob = User.objects.create_user("bob", password="pw")

    def session_headers(self, user: User) -> list[tuple[bytes, bytes]]:
        self.client.force_login(user)
        cookie = f"sessionid={self.client.cookies['sessionid'].value}"
        return [(b"cookie", cookie.encode())]

    async def connect(
        self, path: str, user: User | None = None
    ) -> WebsocketCommunicator:
        headers = await sync_to_async(self.session_headers)(user) if user else []
        communicator = self.create_communicator(ws_path=path, headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        return communicator

    async def connect_ok(
        self, path: str, user: User | None = None
    ) -> WebsocketCommunicator:
        communicator = await self.connect(path, user)
        await communicator.assert_authenticated_status_ok()
        return communicator


class MinimalAndSecureTests(GuideTestCase):
    async def test_minimal_consumer_answers_ping_with_pong(self) -> None:
        communicator = await self.connect_ok("/ws/minimal/")
        await communicator.send_message(PingMessage())
        assert await communicator.receive_all_json() == [
            {"action": "pong", "payload": None}
        ]

    async def test_secure_consumer_rejects_anonymous_with_403(self) -> None:
        room = await Room.objects.acreate(name="lobby")
        communicator = await self.connect(f"/ws/secure/{room.pk}/")
        auth = await communicator.wait_for_auth()
        assert auth is not None
        assert auth.payload.status_code == 403
        await communicator.assert_closed(code=4403)

    async def test_secure_consumer_admits_session_user_and_finds_room(self) -> None:
        room = await Room.objects.acreate(name="lobby")
        communicator = await self.connect_ok(f"/ws/secure/{room.pk}/", self.alice)
        await communicator.send_message(PingMessage())
        assert await communicator.receive_all_json() == []

    async def test_secure_consumer_missing_room_is_404(self) -> None:
        communicator = await self.connect("/ws/secure/999/", self.alice)
        auth = await communicator.wait_for_auth()
        assert auth is not None
        assert auth.payload.status_code == 404
        await communicator.assert_closed(code=4404)


class GenericsAndHandlingTests(GuideTestCase):
    def test_generic_parameters_declare_what_the_consumer_accepts(self) -> None:
        assert SimpleConsumer._chanx_schema is not None
        assert SimpleConsumer._chanx_schema.incoming.names == {"ping"}
        schema = FullConsumer._chanx_schema
        assert schema is not None
        assert schema.incoming.names == {"chat", "notification", "ping"}
        assert schema.events is not None
        assert schema.events.names == {"notify"}
        assert schema.group_actions == {"chat_group"}
        assert schema.model is Room

    async def test_pattern_matching_dispatches_each_message_type(self) -> None:
        communicator = await self.connect_ok("/ws/handling/")
        await communicator.send_message(ChatMsg(payload=ChatPayload(content="hi")))
        assert await communicator.receive_all_json() == [
            {"action": "notification", "payload": {"echo": "hi"}}
        ]
        await communicator.send_message(NotificationMessage(payload={"x": "y"}))
        assert await communicator.receive_all_json() == [
            {
                "action": "notification",
                "payload": {"type": "info", "text": "Update received"},
            }
        ]
        await communicator.send_message(PingMessage())
        assert await communicator.receive_all_json() == [
            {"action": "pong", "payload": None}
        ]


class GroupMessagingTests(GuideTestCase):
    async def test_group_message_reaches_room_members_with_metadata(self) -> None:
        alice = await self.connect_ok("/ws/group/7/", self.alice)
        bob = await self.connect_ok("/ws/group/7/", self.bob)
        other_room = await self.connect_ok("/ws/group/8/", self.bob)
        await alice.send_message(
            ChatMsg(payload=ChatPayload(content="Hello everyone!"))
        )
        payload = {"username": "alice", "content": "Hello everyone!"}
        assert await bob.receive_all_json(wait_group=True) == [
            {
                "action": "chat_group",
                "payload": payload,
                "is_mine": False,
                "is_current": False,
            }
        ]
        assert await alice.receive_all_json() == []
        assert await alice.receive_all_json(wait_group=True) == [
            {
                "action": "chat_group",
                "payload": payload,
                "is_mine": True,
                "is_current": True,
            }
        ]
        assert await other_room.receive_nothing(timeout=0.2)


class ChannelEventTests(GuideTestCase):
    async def test_async_send_notification_reaches_receive_event(self) -> None:
        communicator = await self.connect_ok("/ws/events/")
        await channel_events.async_send_notification()
        assert await communicator.receive_all_json() == [
            {
                "action": "message_response",
                "payload": {"text": "WARNING: Important system notice"},
            }
        ]

    async def test_sync_view_send_notification_reaches_receive_event(self) -> None:
        communicator = await self.connect_ok("/ws/events/")
        request = RequestFactory().post("/notify/")
        response = await sync_to_async(channel_events.send_notification)(request)
        assert response.status_code == 200
        assert await communicator.receive_all_json() == [
            {
                "action": "message_response",
                "payload": {"text": "WARNING: Important system notice"},
            }
        ]


class ContextAndErrorTests(GuideTestCase):
    async def test_user_request_object_scope_and_post_authentication(self) -> None:
        chat = await GroupChat.objects.acreate(title="team")
        member = await ChatMember.objects.acreate(group_chat=chat, user=self.alice)
        communicator = await self.connect_ok(
            f"/ws/context/{chat.pk}/?tab=files", self.alice
        )
        await communicator.send_message(ChatMsg(payload=ChatPayload(content="x")))
        [reply] = await communicator.receive_all_json()
        assert reply["payload"] == {
            "user": "alice",
            "request_user": "alice",
            "obj": chat.pk,
            "path": f"/ws/context/{chat.pk}/",
            "url_params": {"pk": chat.pk},
            "query_params": {"tab": ["files"]},
            "user_status": "online",
            "member": member.pk,
        }

    async def test_custom_error_and_automatic_error(self) -> None:
        communicator = await self.connect_ok("/ws/errors/")
        await communicator.send_message(ChatMsg(payload=ChatPayload(content="bad")))
        assert await communicator.receive_all_json() == [
            {"action": "error", "payload": {"detail": "content must not be 'bad'"}}
        ]
        await communicator.send_message(ChatMsg(payload=ChatPayload(content="crash")))
        frames = await communicator.receive_all_json()
        assert frames == [
            {"action": "error", "payload": {"detail": "Failed to process message"}}
        ]
        await communicator.send_message(ChatMsg(payload=ChatPayload(content="ok")))
        assert await communicator.receive_all_json() == [
            {"action": "success", "payload": {"saved": "ok"}}
        ]

    async def test_configuration_flags_take_effect(self) -> None:
        room = await Room.objects.acreate(name="conf")
        communicator = await self.connect_ok(f"/ws/configured/{room.pk}/", self.alice)
        with capture_logs() as logs:
            await communicator.send_message(PingMessage())
            assert await communicator.receive_all_json() == [
                {"action": "pong", "payload": None}
            ]
            await communicator.send_message(ChatMsg(payload=ChatPayload(content="x")))
            assert await communicator.receive_all_json() == []
        logged = [(e["event"], e.get("action")) for e in logs]
        assert ("message_received", "chat") in logged
        assert ("message_sent", "complete") in logged
        assert not any(action in ("ping", "pong") for _, action in logged)


class RealWorldExampleTests(GuideTestCase):
    async def make_chat(self) -> GroupChat:
        chat: GroupChat = await GroupChat.objects.acreate(title="team")
        await ChatMember.objects.acreate(group_chat=chat, user=self.alice)
        await ChatMember.objects.acreate(group_chat=chat, user=self.bob)
        return chat

    async def test_new_chat_message_is_saved_and_broadcast(self) -> None:
        chat = await self.make_chat()
        alice = await self.connect_ok(f"/ws/groupchat/{chat.pk}/", self.alice)
        bob = await self.connect_ok(f"/ws/groupchat/{chat.pk}/", self.bob)
        await alice.send_to(
            text_data='{"action": "new_chat_message", "payload": {"content": "hello"}}'
        )
        [relayed] = await bob.receive_all_json(wait_group=True)
        assert relayed["action"] == "member_message"
        assert relayed["payload"]["content"] == "hello"
        assert (relayed["is_mine"], relayed["is_current"]) == (False, False)
        saved = await ChatMessage.objects.aget(group_chat=chat)
        assert saved.content == "hello"
        assert relayed["payload"]["id"] == saved.pk

    async def test_join_group_then_targeted_group_message(self) -> None:
        chat = await self.make_chat()
        alice = await self.connect_ok(f"/ws/groupchat/{chat.pk}/", self.alice)
        bob = await self.connect_ok(f"/ws/groupchat/{chat.pk}/", self.bob)
        await alice.send_to(
            text_data='{"action": "join_group", "payload": {"group_name": "extra"}}'
        )
        assert await alice.receive_all_json() == []
        frame: dict[str, Any] = {
            "action": "new_chat_message",
            "payload": {"content": "psst", "groups": ["extra"]},
        }
        await bob.send_json_to(frame)
        [relayed] = await alice.receive_all_json(wait_group=True)
        assert relayed["payload"]["content"] == "psst"
        assert (relayed["is_mine"], relayed["is_current"]) == (False, False)
        assert await bob.receive_all_json() == []
        assert await bob.receive_nothing(timeout=0.2)

    async def test_non_member_is_forbidden(self) -> None:
        chat = await GroupChat.objects.acreate(title="closed")
        communicator = await self.connect(f"/ws/groupchat/{chat.pk}/", self.bob)
        auth = await communicator.wait_for_auth()
        assert auth is not None
        assert auth.payload.status_code == 403
        await communicator.assert_closed(code=4403)
