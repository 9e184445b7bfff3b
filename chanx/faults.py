"""Surviving faults: a channel layer that stops answering, a client that stops reading.

Settings (``CHANX``, see docs/operations-faults.md):

``CHANNEL_LAYER_TIMEOUT``
    Seconds one ``group_send``/``group_add``/``group_discard`` may take
    before it counts as failed (channels-redis can hang on a half-dead Redis).
``SEND_TIMEOUT``
    Seconds one frame may wait for the client to read before the connection
    is dropped with :data:`SEND_TIMEOUT_CLOSE_CODE`.

During a channel-layer outage a consumer keeps serving its own client:
:func:`receive_from_layer` waits out receive errors instead of ending the
connection, probes the layer with backoff, and once it answers again every
live consumer of this process re-joins its groups (a restarted Redis has
forgotten them). Group sends that fail raise :class:`GroupSendError`, which
the sender's client gets as an ``error`` frame of type ``group_send_failed``.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import structlog
from django.core.exceptions import ImproperlyConfigured

from chanx.deadline import within
from chanx.drain import is_live, live_consumers
from chanx.errors import FrameError, detail
from chanx.settings import chanx_settings

__all__ = [
    "CLIENT_GONE_CODE",
    "GROUP_SEND_FAILED",
    "SEND_TIMEOUT_CLOSE_CODE",
    "ConnectionDropped",
    "GroupSendError",
    "dropped_reason",
    "group_add",
    "group_discard",
    "layer_failed",
    "layer_is_down",
    "layer_succeeded",
    "layer_timeout",
    "receive_after_failure",
    "receive_from_layer",
    "seconds_setting",
    "within",
]

_log = structlog.get_logger("chanx.faults")
#: Close code for a client that did not read within ``SEND_TIMEOUT`` (4000 + 408).
SEND_TIMEOUT_CLOSE_CODE = 4408
#: The code reported for a client that vanished mid-send (no close frame came).
CLIENT_GONE_CODE = 1006
#: The error type a sender sees when its group send failed.
GROUP_SEND_FAILED = "group_send_failed"
# Backoff between probes of a layer that failed (seconds).
RETRY_MIN, RETRY_MAX = 0.1, 5.0
# Discarding a channel from this group is a harmless write every layer supports.
_PROBE_GROUP = "chanx.layer_probe"


class GroupSendError(FrameError):
    """A group message or event could not be handed to the channel layer.

    Raised by ``send_group_message``/``send_to_groups`` (the sender's client
    then gets an ``error`` frame of type ``group_send_failed``) and by
    ``send_channel_event`` (catch it in a view to answer 503).

    Attributes:
        error_type: The class name of the layer's exception (e.g.
            ``ConnectionError``, ``TimeoutError``, ``ChannelFull``).
    """

    def __init__(self, error_type: str) -> None:
        message = "The message could not be sent to the group; try again later"
        super().__init__(GROUP_SEND_FAILED, [detail(GROUP_SEND_FAILED, message)])
        self.error_type = error_type


class ConnectionDropped(BaseException):
    """Ends a consumer whose client stopped reading (see ``SEND_TIMEOUT``).

    A ``BaseException``, like ``CancelledError``: handlers' ``except
    Exception`` must not catch it and try to send an error frame to a
    client that reads nothing.
    """

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def dropped_reason(code: int) -> str:
    """Why a connection was dropped, as a bounded label: ``client_gone``
    (the client left) or ``send_timeout`` (it stopped reading)."""
    return "client_gone" if code == CLIENT_GONE_CODE else "send_timeout"


def seconds_setting(name: str) -> float | None:
    """The ``CHANX[name]`` duration in seconds, or None when switched off.

    Raises:
        ImproperlyConfigured: Not a positive number or None.
    """
    value = chanx_settings.as_dict()[name]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ImproperlyConfigured(
            f"CHANX[{name!r}] must be a positive number of seconds or None, "
            f"not {value!r}"
        )
    return float(value)


def layer_timeout() -> float | None:
    """``CHANNEL_LAYER_TIMEOUT``: seconds one channel-layer call may take."""
    return seconds_setting("CHANNEL_LAYER_TIMEOUT")


async def group_add(layer: Any, group: str, channel: str) -> None:
    """``layer.group_add``, bounded by ``CHANNEL_LAYER_TIMEOUT``, retried once."""
    await _idempotent(layer.group_add, group, channel)


async def group_discard(layer: Any, group: str, channel: str) -> None:
    """``layer.group_discard``, bounded by ``CHANNEL_LAYER_TIMEOUT``, retried once."""
    await _idempotent(layer.group_discard, group, channel)


async def _idempotent(operation: Any, group: str, channel: str) -> None:
    timeout = layer_timeout()
    try:
        await within(operation(group, channel), timeout)
    except TimeoutError:
        raise
    except Exception:
        # After Redis restarts, each pooled connection fails once before
        # redis-py replaces it; these operations are idempotent, so one
        # immediate retry hides that. (group_send is not retried: a message
        # must not arrive twice.)
        await within(operation(group, channel), timeout)


class _Health:
    __slots__ = ("down",)

    def __init__(self) -> None:
        self.down = False


_health: weakref.WeakKeyDictionary[Any, _Health] = weakref.WeakKeyDictionary()
# Strong references: the loop keeps only weak ones to running tasks.
_rejoins: set[asyncio.Task[None]] = set()


def _state(layer: Any) -> _Health:
    state = _health.get(layer)
    if state is None:
        state = _health[layer] = _Health()
    return state


def layer_failed(layer: Any) -> None:
    """Note that an operation on ``layer`` failed."""
    _state(layer).down = True


def layer_is_down(layer: Any) -> bool:
    """Whether the last operation on ``layer`` failed and no probe answered since."""
    state = _health.get(layer)
    return state is not None and state.down


def layer_succeeded(layer: Any) -> None:
    """Note that ``layer`` answered; after a failure, re-join every consumer's groups."""
    state = _health.get(layer)
    if state is None or not state.down:
        return
    state.down = False
    _log.info("channel_layer_recovered")
    task = asyncio.get_running_loop().create_task(_rejoin_all(layer))
    _rejoins.add(task)
    task.add_done_callback(_rejoins.discard)


async def _rejoin_all(layer: Any) -> None:
    # A Redis that restarted without persistence lost every group; group_add
    # is idempotent, so re-adding what survived costs one write per group.
    rejoined = 0
    for consumer in live_consumers():
        if getattr(consumer, "channel_layer", None) is layer:
            for group in consumer.joined_groups():
                if not is_live(consumer):
                    # It left meanwhile: re-adding would outlive its discard.
                    break
                try:
                    await group_add(layer, group, consumer.channel_name)
                except Exception as exc:
                    _log.warning("group_rejoin_failed", error_type=type(exc).__name__)
                    layer_failed(layer)
                    return
                rejoined += 1
    _log.info("groups_rejoined", memberships=rejoined)


async def receive_from_layer(consumer: Any) -> dict[str, Any]:
    """The next channel-layer message for ``consumer``; waits out layer outages.

    Channels would end the connection on the first receive error; here the
    error is logged (``channel_layer_receive_failed``), counted
    (``channel_layer_error(conn, "receive", exc)``), and the layer probed with
    backoff until it answers, while the client keeps being served.
    """
    try:
        message: dict[str, Any] = await consumer.channel_layer.receive(
            consumer.channel_name
        )
    except Exception as exc:
        return await receive_after_failure(consumer, exc)
    return message


async def receive_after_failure(consumer: Any, exc: Exception) -> dict[str, Any]:
    """The next message once the receive that raised ``exc`` is waited out.

    The dispatch loop awaits ``layer.receive`` directly (an idle connection
    then holds no coroutine of chanx's for it) and calls this only when it
    fails: :func:`receive_from_layer` in two steps.
    """
    layer = consumer.channel_layer
    streak = 1
    while True:
        # A layer that answers probes but keeps failing receives backs off
        # further each time instead of spinning.
        await _wait_for_layer(consumer, exc, streak)
        try:
            message: dict[str, Any] = await layer.receive(consumer.channel_name)
        except Exception as again:
            exc = again
            streak += 1
        else:
            return message


async def _wait_for_layer(consumer: Any, exc: Exception, streak: int) -> None:
    layer = consumer.channel_layer
    if streak == 1:
        logger = getattr(consumer, "logger", None) or _log
        logger.warning("channel_layer_receive_failed", error_type=type(exc).__name__)
    conn = getattr(consumer, "conn", None)
    consumer._hooks.channel_layer_error(conn, "receive", exc)
    layer_failed(layer)
    delay = min(RETRY_MIN * 2 ** (streak - 1), RETRY_MAX)
    while True:
        await asyncio.sleep(delay)
        try:
            await group_discard(layer, _PROBE_GROUP, consumer.channel_name)
        except Exception:
            delay = min(delay * 2, RETRY_MAX)
            continue
        layer_succeeded(layer)
        return
