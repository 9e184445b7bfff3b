"""Serializers of the demo chat app."""

from __future__ import annotations

from rest_framework import serializers

from chat.models import ChatMessage


class ChatMessageSerializer(serializers.ModelSerializer[ChatMessage]):
    """A group chat message as clients receive it (relations as primary keys)."""

    class Meta:
        model = ChatMessage
        fields = ["id", "group_chat", "sender", "content", "created_at"]
        read_only_fields = fields


class AnnouncementSerializer(serializers.Serializer[dict[str, str]]):
    """Body of ``POST /api/announce/``."""

    content = serializers.CharField(max_length=2000)
    level = serializers.CharField(max_length=32, default="info")
