"""A routing module that defines no routes at all."""

from __future__ import annotations

routes = ["not", "a", "router"]
