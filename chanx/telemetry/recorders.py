"""Direct write paths into prometheus_client label children.

A frame updates five samples. ``Counter.inc`` and ``Histogram.observe``
re-check on every call what cannot change for a label child (observability,
the sign of the amount, exemplars), a histogram finds its bucket with a
Python loop over the bounds, and every cell takes its lock. The recorders
here resolve the child's value cells once and then only add to them: a
bisect finds the bucket.

In one process (prometheus_client's ``MutexValue`` cells) each cell the
recorders write is wrapped in an :class:`OwnedCell`: the thread that
resolved it (the event loop's, for per-frame samples) adds to a float of
its own without the lock, any other thread through the wrapped cell's lock.
A scrape reads the sum. In multiprocess mode (mmap-backed cells) the
recorders write the cells as they are, under prometheus_client's lock.
Either way, scrapes see exactly what the public API would have written;
``tests/telemetry/test_recorders.py`` checks that sample for sample.

The cells are private attributes of prometheus_client; when a version lacks
them, a recorder falls back to the public method, so an upgrade can make
metrics slower but never wrong.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, MutableSequence, Sequence
from threading import get_ident
from typing import Any

from prometheus_client.values import MutexValue

__all__ = ["CounterRecorder", "HistogramRecorder", "OwnedCell"]

_Add = Callable[[float], None]
# Wrapping a cell happens once per label child; one lock for all of them.
_wrapping = threading.Lock()


class OwnedCell:
    """A ``MutexValue`` whose owning thread adds to it without taking its lock.

    Stands in for the wrapped cell in its label child: ``inc``, ``set``,
    ``get`` and the exemplar methods keep ``MutexValue``'s meaning, so the
    public API and scrapes work unchanged. The wrapped cell keeps whatever
    other threads add (including an ``inc`` that found it before it was
    wrapped); only the owner writes :attr:`_owned`, so no add is lost and a
    scrape's sum never goes backwards.

    Args:
        shared: The child's ``MutexValue``.
        owner: ``threading.get_ident()`` of the thread adding without a lock.
    """

    __slots__ = ("_owned", "_owner", "_shared")

    def __init__(self, shared: Any, owner: int) -> None:
        # A MutexValue; Any, since prometheus_client leaves it unannotated.
        self._shared = shared
        self._owner = owner
        self._owned = 0.0

    def add(self, amount: float) -> None:
        """Add ``amount``: lock-free on the owning thread, locked elsewhere."""
        if get_ident() == self._owner:
            self._owned += amount
        else:
            self._shared.inc(amount)

    def inc(self, amount: float) -> None:
        self._shared.inc(amount)

    def set(self, value: float, timestamp: float | None = None) -> None:
        # Counters and histograms never set a cell; kept for the interface.
        self._shared.set(value - self._owned, timestamp)

    def get(self) -> float:
        return float(self._shared.get() + self._owned)

    def set_exemplar(self, exemplar: Any) -> None:
        self._shared.set_exemplar(exemplar)

    def get_exemplar(self) -> Any:
        return self._shared.get_exemplar()


def _owned(cell: object) -> OwnedCell | None:
    # Only prometheus_client's single-process cell, exactly: an mmap-backed
    # one must be written as it is, for the other processes' scrapes.
    if type(cell) is OwnedCell:
        return cell
    if type(cell) is MutexValue:
        return OwnedCell(cell, get_ident())
    return None


def _own_attribute(holder: Any, name: str) -> _Add | None:
    """``holder.<name>``'s adder, after wrapping the cell in an :class:`OwnedCell`."""
    with _wrapping:
        owned = _owned(getattr(holder, name, None))
        if owned is not None:
            setattr(holder, name, owned)
            return owned.add
    return _cell_adder(getattr(holder, name, None))


def _own_item(cells: MutableSequence[Any], index: int) -> _Add | None:
    with _wrapping:
        owned = _owned(cells[index])
        if owned is not None:
            cells[index] = owned
            return owned.add
    return _cell_adder(cells[index])


def _cell_adder(cell: object) -> _Add | None:
    inc = getattr(cell, "inc", None)
    return inc if callable(inc) else None


class CounterRecorder:
    """Adds to a counter child; :meth:`inc` takes a non-negative amount."""

    __slots__ = ("inc",)

    def __init__(self, child: Any) -> None:
        add = _own_attribute(child, "_value")
        self.inc: _Add = add if add is not None else child.inc


class HistogramRecorder:
    """Observes into a histogram child (no exemplars)."""

    __slots__ = (
        "_bounds",
        "_buckets",
        "_cells",
        "_owner",
        "_sum",
        "_sum_cell",
        "observe",
    )

    def __init__(self, child: Any) -> None:
        self.observe: _Add = child.observe
        bounds: Sequence[float] | None = getattr(child, "_upper_bounds", None)
        cells: MutableSequence[object] | None = getattr(child, "_buckets", None)
        if bounds is None or not isinstance(cells, list) or len(cells) != len(bounds):
            return
        add_sum = _own_attribute(child, "_sum")
        buckets = [_own_item(cells, index) for index in range(len(cells))]
        if add_sum is None or None in buckets:
            return
        self._bounds = list(bounds)
        self._buckets: list[_Add] = [add for add in buckets if add is not None]
        self._sum = add_sum
        self.observe = self._observe
        owned = [getattr(add, "__self__", None) for add in (add_sum, *self._buckets)]
        if all(type(cell) is OwnedCell for cell in owned):
            owners = {cell._owner for cell in owned}  # type: ignore[union-attr]
            if len(owners) == 1:
                # One thread owns every cell: its observations check the
                # thread once and add to the cells' own floats.
                self._owner = owners.pop()
                self._sum_cell: OwnedCell = owned[0]  # type: ignore[assignment]
                self._cells: list[OwnedCell] = owned[1:]  # type: ignore[assignment]
                self.observe = self._observe_owned

    def _observe(self, amount: float) -> None:
        self._sum(amount)
        # The first bound >= amount: the bucket the public loop would pick
        # (none for NaN, which it also skips).
        index = bisect_left(self._bounds, amount)
        if index < len(self._buckets) and amount <= self._bounds[index]:
            self._buckets[index](1)

    def _observe_owned(self, amount: float) -> None:
        if get_ident() != self._owner:
            self._observe(amount)
            return
        self._sum_cell._owned += amount
        index = bisect_left(self._bounds, amount)
        if index < len(self._cells) and amount <= self._bounds[index]:
            self._cells[index]._owned += 1
