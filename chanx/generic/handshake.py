"""The handshake and the close: authenticate, join groups, report, leave.

Order matters: groups are joined and ``post_authentication`` has run before
the client sees ``status_code: 200``, so a client that saw it is guaranteed
to be in its groups. A failed handshake joins nothing and is closed with
``4000 + status``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import Any

import structlog
from channels.db import aclose_old_connections
from channels.exceptions import AcceptConnection, DenyConnection, StopConsumer

from chanx.faults import (
    CLIENT_GONE_CODE,
    ConnectionDropped,
    dropped_reason,
    group_add,
    group_discard,
)
from chanx.generic.authenticator import (
    AuthenticationResult,
    ChanxWebsocketAuthenticator,
    close_code_for,
)
from chanx.generic.base import ConsumerBase
from chanx.hooks import ConnectionInfo, Observation, lasting_context
from chanx.layers import check_channel_layer
from chanx.limits import CAPACITY_CLOSE_CODE, connection_slots
from chanx.messages.outgoing import AuthenticationMessage, AuthenticationPayload
from chanx.routing import route_template

__all__ = ["HandshakeMixin"]

_log = structlog.get_logger("chanx.consumer")


class HandshakeMixin(ConsumerBase):
    """Connection lifecycle of a chanx consumer."""

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        """Handle the handshake: run :meth:`connect` and report its outcome.

        Unlike Channels, ``groups`` are joined only after authentication.
        """
        kwargs = (self.scope.get("url_route") or {}).get("kwargs", {})
        path = self.scope.get("path", "")
        self.conn = ConnectionInfo(
            uuid.uuid4().hex, type(self).__name__, path, route_template(path, kwargs)
        )
        self.logger = _log.bind(
            connection_id=self.conn.connection_id,
            consumer=self.conn.consumer,
            path=path,
            route=self.conn.route,
        )
        check_channel_layer(self.channel_layer)
        observation = self._hooks.connection_started(self.conn, self.scope)
        self.logger.info("connection_opened")
        if not connection_slots.acquire(self.config.limits.max_connections):
            await self._refuse_for_capacity(observation)
            return
        self._holds_slot = True
        try:
            await self._run_connect(observation)
        except ConnectionDropped as dropped:
            # The client left (or stopped reading) mid-handshake: its doing,
            # not a server failure. The consumer ends as for any drop.
            observation.finish("rejected", dropped_reason(dropped.code))
            raise

    async def _run_connect(self, observation: Observation) -> None:
        try:
            await self.connect()
        except AcceptConnection:
            await self.accept()
        except DenyConnection:
            await self.close()
        except Exception as exc:
            self.logger.exception("connect_failed")
            observation.finish("error", type(exc).__name__, exc)
            await self.close(close_code_for(500))
            return
        if self._auth_state == "pending":
            # A user-defined connect() that did not call super() did its own checks.
            self._auth_state = "ok"
        status = self.conn.status_code or 200
        if status == 200:
            observation.finish("accepted")
        else:
            observation.finish("rejected", str(status))

    async def _refuse_for_capacity(self, observation: Observation) -> None:
        # Accepted first so the client sees the close code, not a bare 403.
        self.logger.warning("connection_refused", reason="max_connections")
        self.conn.status_code = 503
        self._auth_state = "failed"
        observation.finish("rejected", "503")
        await self.accept()
        await self.close(CAPACITY_CLOSE_CODE)

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Iterable[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Accept the handshake, as Channels does.

        The server may keep the context it accepts in for the connection's
        whole life (uvicorn's keepalive timer does): when the hooks offer a
        lighter one (:func:`chanx.hooks.lasting_context`), the accept runs
        in that one, so an idle connection does not hold on to the
        handshake's ended ``connect`` span.
        """
        accepting = super().accept(subprotocol, headers)
        context = lasting_context(self._hooks)
        try:
            if context is None:
                await accepting
                return
            # A task copies the context current where it is created (Python
            # 3.10 has no ``context=`` argument); awaiting it also forwards
            # a cancellation of this task to it.
            await context.run(asyncio.ensure_future, accepting)
        except OSError:
            # The client left before the accept went out (uvicorn raises
            # ClientDisconnected, an OSError): news, not a handshake bug.
            self._any_logger().info("client_gone")
            raise ConnectionDropped(CLIENT_GONE_CODE) from None

    async def connect(self) -> None:
        """Accept, authenticate, join groups, then report the outcome to the client.

        Override to add work, calling ``await super().connect()``.
        """
        await self.accept()
        result = await self.authenticate()
        if result.is_authenticated:
            result = await self._start_session(result)
        await self._finish_handshake(result)

    async def authenticate(self) -> AuthenticationResult:
        """Run the DRF authentication, permission and object checks."""
        cls = type(self)
        authenticator = ChanxWebsocketAuthenticator(
            cls.authentication_classes,
            cls.permission_classes,
            cls.queryset,
            cls.auth_method,
            cls.lookup_field,
            cls.lookup_url_kwarg,
        )
        return await authenticator.authenticate(self.scope)

    async def build_groups(self) -> list[str]:
        """Groups to join after authentication, besides the ``groups`` attribute."""
        return []

    async def post_authentication(self) -> None:
        """Called after a successful authentication, once the groups are joined."""

    async def _start_session(
        self, result: AuthenticationResult
    ) -> AuthenticationResult:
        self.user, self.request, self.obj = result.user, result.request, result.obj
        pk = getattr(self.user, "pk", None)
        self.conn.user_id = None if pk is None else str(pk)
        try:
            for group in await self.build_groups():
                if group not in self.groups:
                    self.groups.append(group)
            for group in self.groups:
                await self._join(group)
            await self.post_authentication()
        except Exception:
            self.logger.exception("session_start_failed", groups=len(self.groups))
            await self._leave_groups()
            return AuthenticationResult(500, {"detail": "Internal server error"})
        return result

    async def _join(self, group: str) -> None:
        try:
            await group_add(self.channel_layer, group, self.channel_name)
        except Exception as exc:
            self._hooks.channel_layer_error(self.conn, "group_add", exc)
            raise
        self._joined.append(group)

    async def _finish_handshake(self, result: AuthenticationResult) -> None:
        self.conn.status_code = result.status_code
        self._auth_state = "ok" if result.is_authenticated else "failed"
        if self.config.send_authentication_message:
            payload = AuthenticationPayload(
                status_code=result.status_code,
                status_text=result.status_text,
                data=result.data,
            )
            await self.send_message(AuthenticationMessage(payload=payload))
        if result.is_authenticated:
            user = {"user_id": self.conn.user_id} if self.config.log_user_id else {}
            self.logger.info("connection_authenticated", **user)
        else:
            self.logger.info("authentication_failed", status_code=result.status_code)
            await self.close(close_code_for(result.status_code))

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Leave groups, run :meth:`disconnect`, report the close and stop."""
        code = int(message.get("code", 1000))
        self._release_slot()
        await self._leave_groups()
        try:
            await self.disconnect(code)
        except Exception:
            _log.exception("disconnect_failed", consumer=type(self).__name__)
        conn = getattr(self, "conn", None)
        if conn is not None:
            self._hooks.connection_closed(conn, code)
            self.logger.info("connection_closed", code=code)
        await aclose_old_connections()
        raise StopConsumer()

    async def _leave_groups(self) -> None:
        # As Channels does, also leave groups the consumer appended to
        # self.groups after joining them itself (the guide's join_group).
        extra = self.groups if self._auth_state == "ok" else []
        joined = list(dict.fromkeys([*self._joined, *extra]))
        self._joined = []
        for group in joined:
            try:
                await group_discard(self.channel_layer, group, self.channel_name)
            except Exception as exc:
                _log.exception("group_discard_failed")
                conn = getattr(self, "conn", None)
                self._hooks.channel_layer_error(conn, "group_discard", exc)
