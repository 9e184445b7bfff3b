"""The demo chat app: rooms, group chats and their WebSocket consumers."""
