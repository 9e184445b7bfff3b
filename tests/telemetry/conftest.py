"""Fixtures for telemetry tests: install hooks for one test, then restore."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from chanx.hooks import ConsumerHooks, get_hooks, install_hooks


@pytest.fixture
def use_hooks() -> Iterator[Callable[[ConsumerHooks], None]]:
    """Call ``use_hooks(hooks)`` to make ``hooks`` the default for this test."""
    previous = get_hooks()

    def use(hooks: ConsumerHooks) -> None:
        install_hooks(hooks)

    yield use
    install_hooks(previous)
