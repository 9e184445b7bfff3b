"""HTTP API of the demo chat app."""

from __future__ import annotations

import structlog
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chanx.faults import GroupSendError
from chat.consumers.room import ANNOUNCEMENTS_GROUP, RoomConsumer
from chat.messages.events import NotifyEvent
from chat.serializers import AnnouncementSerializer

logger = structlog.get_logger(__name__)


class AnnounceView(APIView):
    """``POST /api/announce/``: push an announcement to every ``RoomConsumer`` client.

    Body: ``{"content": "...", "level": "info"}``. The event goes through the
    channel layer, so with Redis it reaches clients of every server process.
    """

    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    # JSON only: the browsable API would need templates this project does not ship.
    renderer_classes = [JSONRenderer]

    def post(self, request: Request) -> Response:
        serializer = AnnouncementSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        event = NotifyEvent(
            payload=NotifyEvent.Payload(content=data["content"], level=data["level"])
        )
        try:
            RoomConsumer.send_channel_event(ANNOUNCEMENTS_GROUP, event)
        except GroupSendError:
            # The channel layer is down or too slow (already logged and
            # counted by chanx): tell the caller to retry, not that we broke.
            return Response(
                {"status": "unavailable", "detail": "try again later"}, status=503
            )
        logger.info("announcement_sent", user_id=request.user.pk, level=data["level"])
        return Response({"status": "sent"})
