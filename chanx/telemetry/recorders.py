"""Direct write paths into prometheus_client label children.

A frame updates five samples. ``Counter.inc`` and ``Histogram.observe``
re-check on every call what cannot change for a label child (observability,
the sign of the amount, exemplars) and a histogram finds its bucket with a
Python loop over the bounds. The recorders here resolve the child's value
cells once and then only add to them: a bisect finds the bucket. The cells
are prometheus_client's own (``MutexValue`` in one process, the mmap-backed
value in multiprocess mode), so scrapes see exactly what the public API
would have written; ``tests/telemetry/test_recorders.py`` checks that sample
for sample.

The cells are private attributes of prometheus_client; when a version lacks
them, a recorder falls back to the public method, so an upgrade can make
metrics slower but never wrong.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["CounterRecorder", "HistogramRecorder"]

_Add = Callable[[float], None]


def _cell_adder(cell: object) -> _Add | None:
    inc = getattr(cell, "inc", None)
    return inc if callable(inc) else None


class CounterRecorder:
    """Adds to a counter child; :meth:`inc` takes a non-negative amount."""

    __slots__ = ("inc",)

    def __init__(self, child: Any) -> None:
        add = _cell_adder(getattr(child, "_value", None))
        self.inc: _Add = add if add is not None else child.inc


class HistogramRecorder:
    """Observes into a histogram child (no exemplars)."""

    __slots__ = ("_bounds", "_buckets", "_sum", "observe")

    def __init__(self, child: Any) -> None:
        self.observe: _Add = child.observe
        bounds: Sequence[float] | None = getattr(child, "_upper_bounds", None)
        cells: Sequence[object] | None = getattr(child, "_buckets", None)
        add_sum = _cell_adder(getattr(child, "_sum", None))
        if bounds is None or cells is None or add_sum is None:
            return
        buckets = [_cell_adder(cell) for cell in cells]
        if len(buckets) != len(bounds) or None in buckets:
            return
        self._bounds = list(bounds)
        self._buckets: list[_Add] = [add for add in buckets if add is not None]
        self._sum = add_sum
        self.observe = self._observe

    def _observe(self, amount: float) -> None:
        self._sum(amount)
        # The first bound >= amount: the bucket the public loop would pick
        # (none for NaN, which it also skips).
        index = bisect_left(self._bounds, amount)
        if index < len(self._buckets) and amount <= self._bounds[index]:
            self._buckets[index](1)
