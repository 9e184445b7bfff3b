"""Helpers shared by the demo consumers."""

from __future__ import annotations


def name_group_chat(pk: int) -> str:
    """The channel-layer group of a group chat.

    Example:
        >>> name_group_chat(3)
        'group_chat_3'
    """
    return f"group_chat_{pk}"
