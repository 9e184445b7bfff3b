"""Test helpers for chanx consumers: a richer communicator and a test case.

Example:
    >>> class PingTests(WebsocketTestCase):
    ...     ws_path = "/ws/ping/"
    ...
    ...     async def test_ping(self) -> None:
    ...         await self.auth_communicator.connect()
    ...         await self.auth_communicator.assert_authenticated_status_ok()
    ...         await self.auth_communicator.send_message(PingMessage())
    ...         replies = await self.auth_communicator.receive_all_json()
    ...         assert replies == [{"action": "pong", "payload": None}]

``receive_all_json`` waits for the ``complete`` frame, so consumers under test
should run with ``send_completion`` on (``CHANX["SEND_COMPLETION"] = True``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction
from channels.testing.websocket import WebsocketCommunicator as ChannelsCommunicator
from django.conf import settings
from django.test import TransactionTestCase
from django.utils.module_loading import import_string

from chanx.codec import Codec
from chanx.messages.base import BaseMessage
from chanx.messages.outgoing import AuthenticationMessage
from chanx.settings import chanx_settings

__all__ = [
    "WebsocketCommunicator",
    "WebsocketTestCase",
    "default_router",
    "disconnect_quietly",
]

Frame = dict[str, Any]


def _remaining(deadline: float) -> float:
    return max(deadline - asyncio.get_running_loop().time(), 0.001)


def _codec() -> Codec:
    return Codec(chanx_settings.MESSAGE_ACTION_KEY, bool(chanx_settings.CAMELIZE))


class WebsocketCommunicator(ChannelsCommunicator):  # type: ignore[misc]
    """Channels' communicator plus helpers that speak chanx messages."""

    async def send_message(self, message: BaseMessage) -> None:
        """Send ``message`` as the client would (action key, camelCase applied)."""
        await self.send_to(text_data=_codec().encode(message.model_dump(mode="json")))

    async def receive_frame(self, timeout: float = 1) -> Frame:
        """The next JSON frame; fails if the socket closes instead."""
        frame: Frame = await self.receive_json_from(timeout)
        return frame

    def _action(self, frame: Frame) -> Any:
        return frame.get(chanx_settings.MESSAGE_ACTION_KEY)

    async def receive_until_action(
        self, action: str, *, timeout: float = 5, inclusive: bool = True
    ) -> list[Frame]:
        """Frames up to the first whose action is ``action`` (kept if ``inclusive``).

        Raises:
            AssertionError: No such frame came within ``timeout`` seconds.
        """
        frames: list[Frame] = []
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                frame = await self.receive_frame(_remaining(deadline))
                if self._action(frame) == action:
                    return [*frames, frame] if inclusive else frames
                frames.append(frame)
        except (TimeoutError, asyncio.TimeoutError):
            raise AssertionError(
                f"no {action!r} frame within {timeout}s; received {frames!r}"
            ) from None

    async def receive_all_json(
        self, timeout: float = 5, *, wait_group: bool = False
    ) -> list[Frame]:
        """Frames up to the next completion frame, which is left out.

        Args:
            timeout: Seconds to wait for the completion frame.
            wait_group: Wait for ``group_complete`` (after a relayed group
                message) instead of ``complete``.
        """
        stop = "group_complete" if wait_group else "complete"
        return await self.receive_until_action(stop, timeout=timeout, inclusive=False)

    async def wait_for_auth(
        self, send_authentication_message: bool | None = None, max_auth_time: float = 5
    ) -> AuthenticationMessage | None:
        """The authentication frame, or ``None`` when the consumer sends none."""
        if send_authentication_message is None:
            send_authentication_message = bool(
                chanx_settings.SEND_AUTHENTICATION_MESSAGE
            )
        if not send_authentication_message:
            return None
        frames = await self.receive_until_action(
            "authentication", timeout=max_auth_time
        )
        content = _codec().decode(json.dumps(frames[-1]))
        return AuthenticationMessage.model_validate(content)

    async def assert_authenticated_status_ok(
        self, max_auth_time: float = 5
    ) -> AuthenticationMessage:
        """Wait for the authentication frame and check that its status is 200."""
        message = await self.wait_for_auth(True, max_auth_time)
        assert message is not None
        status = message.payload.status_code
        assert status == 200, (
            f"authentication failed with {status}: {message.payload.data!r}"
        )
        return message

    async def assert_closed(self, timeout: float = 1, code: int | None = None) -> int:
        """Check that the server closes the socket (with ``code``, if given).

        Frames sent before the close are skipped.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            output = await self.receive_output(_remaining(deadline))
            if output["type"] == "websocket.close":
                break
        closed: int = output.get("code", 1000)
        assert code is None or closed == code, f"closed with {closed}, expected {code}"
        return closed


async def disconnect_quietly(communicators: list[WebsocketCommunicator]) -> None:
    """Disconnect each communicator, ignoring ones already closed or never connected."""
    for communicator in communicators:
        # A receive that timed out has already cancelled the application.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await communicator.disconnect()


def default_router() -> Any:
    """The ``websocket`` application of ``settings.ASGI_APPLICATION``."""
    application = import_string(getattr(settings, "ASGI_APPLICATION", ""))
    mapping = getattr(application, "application_mapping", None)
    return mapping["websocket"] if mapping else application


class WebsocketTestCase(TransactionTestCase):
    """A test case that builds communicators and disconnects them afterwards.

    Attributes:
        ws_path: Path the default communicator connects to.
        router: The ASGI application under test (default: :func:`default_router`).
    """

    ws_path: str = ""
    router: Any = None

    def __init__(self, methodName: str = "runTest") -> None:
        super().__init__(methodName)
        self._communicators: list[WebsocketCommunicator] = []
        self._auth_communicator: WebsocketCommunicator | None = None
        method = getattr(self, methodName, None)
        if method is not None and iscoroutinefunction(method):
            # Disconnect inside the test's own event loop, where the
            # communicators live; tearDown runs after that loop is gone.
            @functools.wraps(method)
            async def run_then_disconnect(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await method(*args, **kwargs)
                finally:
                    await self.disconnect_all()

            setattr(self, methodName, run_then_disconnect)

    def get_ws_headers(self) -> list[tuple[bytes, bytes]]:
        """Headers for the handshake (override to add auth headers or an Origin)."""
        return []

    def get_subprotocols(self) -> list[str]:
        """Subprotocols the client offers."""
        return []

    def create_communicator(
        self,
        *,
        ws_path: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        subprotocols: list[str] | None = None,
    ) -> WebsocketCommunicator:
        """A new (not yet connected) communicator, disconnected after the test."""
        communicator = WebsocketCommunicator(
            self.router if self.router is not None else default_router(),
            ws_path if ws_path is not None else self.ws_path,
            headers=self.get_ws_headers() if headers is None else headers,
            subprotocols=self.get_subprotocols()
            if subprotocols is None
            else subprotocols,
        )
        self._communicators.append(communicator)
        return communicator

    @property
    def auth_communicator(self) -> WebsocketCommunicator:
        """The default communicator: ``ws_path`` with :meth:`get_ws_headers`."""
        if self._auth_communicator is None:
            self._auth_communicator = self.create_communicator()
        return self._auth_communicator

    async def disconnect_all(self) -> None:
        """Disconnect every communicator this test created."""
        communicators, self._communicators = self._communicators, []
        self._auth_communicator = None
        await disconnect_quietly(communicators)

    def tearDown(self) -> None:
        if self._communicators:  # left over by a synchronous test
            async_to_sync(self.disconnect_all)()
        super().tearDown()
