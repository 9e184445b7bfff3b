"""pytest fixtures for chanx consumers (loaded automatically as a pytest plugin).

Override ``chanx_ws_path``, ``chanx_router`` or ``chanx_ws_headers`` in a
``conftest.py``; every communicator the fixtures create is disconnected when
the test ends. The async fixtures need pytest-asyncio.

Example:
    >>> @pytest.fixture
    ... def chanx_ws_path() -> str:
    ...     return "/ws/ping/"
    >>> async def test_ping(chanx_auth_communicator):
    ...     await chanx_auth_communicator.send_message(PingMessage())
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from chanx.testing import WebsocketCommunicator

    Factory = Callable[..., Awaitable[WebsocketCommunicator]]

_F = TypeVar("_F", bound=Callable[..., Any])

try:
    import pytest_asyncio

    _fixture: Any = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - the async fixtures need pytest-asyncio
    _fixture = pytest.fixture


def _async_fixture(function: _F) -> _F:
    return cast("_F", _fixture(function))


@pytest.fixture
def chanx_ws_path() -> str:
    """Path the default communicator connects to."""
    return "/"


@pytest.fixture
def chanx_router() -> Any:
    """The ASGI application under test: the websocket app of ``ASGI_APPLICATION``."""
    from chanx.testing import default_router

    return default_router()


@pytest.fixture
def chanx_ws_headers() -> list[tuple[bytes, bytes]]:
    """Handshake headers for the default communicator."""
    return []


@pytest.fixture
def chanx_subprotocols() -> list[str]:
    """Subprotocols the default communicator offers."""
    return []


@_async_fixture
async def chanx_communicator_factory(
    chanx_router: Any,
    chanx_ws_path: str,
    chanx_ws_headers: list[tuple[bytes, bytes]],
    chanx_subprotocols: list[str],
) -> AsyncIterator[Factory]:
    """``await factory(path=None, headers=None, subprotocols=None, router=None)``."""
    from chanx.testing import WebsocketCommunicator, disconnect_quietly

    created: list[WebsocketCommunicator] = []

    async def factory(
        path: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        subprotocols: list[str] | None = None,
        router: Any = None,
    ) -> WebsocketCommunicator:
        communicator = WebsocketCommunicator(
            router if router is not None else chanx_router,
            path if path is not None else chanx_ws_path,
            headers=chanx_ws_headers if headers is None else headers,
            subprotocols=chanx_subprotocols if subprotocols is None else subprotocols,
        )
        created.append(communicator)
        return communicator

    yield factory
    await disconnect_quietly(created)


@_async_fixture
async def chanx_auth_communicator(
    chanx_communicator_factory: Factory,
) -> WebsocketCommunicator:
    """A communicator on ``chanx_ws_path``, connected (the handshake accepted)."""
    communicator = await chanx_communicator_factory()
    connected, _ = await communicator.connect()
    assert connected, "the consumer refused the handshake"
    return communicator
