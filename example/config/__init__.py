"""Project configuration of the chanx demo: settings, ASGI app, HTTP and WebSocket routes."""
