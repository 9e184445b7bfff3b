"""Freezing what a server process has built by the time it starts serving.

Once Django, its apps, the URLconf and the consumers are imported, a process
holds some hundred thousand objects that live as long as it does. CPython's
collector walks all of them in every full collection, and under load a full
collection comes often: the objects of in-flight messages that outlive a
young collection count towards the next one. On the benchmark machine a
chanx or plain Channels echo server ran one every few thousand round trips,
55-90 ms each, with no frame handled meanwhile: most of its p99 round trip.

:func:`freeze_startup_heap` collects once and then moves every object left
to the collector's permanent generation (``gc.freeze()``), which later
collections skip; they then only walk what the server allocated since.
``python -m chanx.serve`` calls it once the app is loaded, unless
``--no-gc-freeze`` or ``CHANX_GC_FREEZE=0`` says not to. The cost: an
object frozen at startup is never collected as part of a reference cycle
later, so a startup object that becomes cyclic garbage stays in memory.
"""

from __future__ import annotations

import gc
import os

__all__ = ["GC_FREEZE_ENV", "freeze_startup_heap", "gc_freeze_wanted"]

#: Environment variable switching the freeze off (``0``/``false``/``no``/``off``).
GC_FREEZE_ENV = "CHANX_GC_FREEZE"

_ON = frozenset({"", "1", "true", "yes", "on"})
_OFF = frozenset({"0", "false", "no", "off"})


def gc_freeze_wanted() -> bool:
    """Whether ``CHANX_GC_FREEZE`` leaves the startup freeze on (the default).

    Raises:
        ValueError: The variable holds something other than a yes or no.
    """
    raw = os.environ.get(GC_FREEZE_ENV, "").strip().lower()
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    raise ValueError(
        f"{GC_FREEZE_ENV}={raw!r} is not a yes/no value; "
        "use 0 to keep the startup heap unfrozen, 1 (the default) to freeze it"
    )


def freeze_startup_heap() -> int:
    """Collect garbage, then exempt every remaining object from collection.

    Call it once, when the process has imported everything it will keep
    (after the ASGI app is loaded, before serving). The collection first
    keeps garbage that already exists from being frozen with the rest.

    Returns:
        How many objects are frozen now (``gc.get_freeze_count()``).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
