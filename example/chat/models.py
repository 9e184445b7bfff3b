"""Models of the demo: rooms for the room chat, group chats for the guide's example."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Room(models.Model):
    """A chat room; only its members may connect to it.

    Attributes:
        name: The slug clients use in the URL: ``/ws/chat/<name>/``.
        members: Users allowed into the room.
    """

    name = models.SlugField(unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="rooms", blank=True
    )

    def __str__(self) -> str:
        return self.name


class GroupChat(models.Model):
    """A group chat; its members are the ``ChatMember`` rows (``group_chat.members``).

    Attributes:
        title: Display name of the chat.
    """

    title = models.CharField(max_length=255)

    def __str__(self) -> str:
        return self.title


class ChatMember(models.Model):
    """Membership of a user in a group chat; the sender of its messages.

    Attributes:
        group_chat: The chat (reverse accessor: ``GroupChat.members``).
        user: The member.
    """

    group_chat = models.ForeignKey(
        GroupChat, on_delete=models.CASCADE, related_name="members"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="chat_memberships",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group_chat", "user"], name="unique_chat_member"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.group_chat_id}"


class ChatMessage(models.Model):
    """A message posted in a group chat.

    Attributes:
        group_chat: The chat the message belongs to.
        sender: The membership that posted it.
        content: The message text.
        created_at: When it was posted.
    """

    group_chat = models.ForeignKey(
        GroupChat, on_delete=models.CASCADE, related_name="messages"
    )
    sender = models.ForeignKey(
        ChatMember, on_delete=models.CASCADE, related_name="messages"
    )
    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"message {self.pk} in {self.group_chat_id}"
