"""The direct recorders write exactly what prometheus_client's public API writes."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import values as prometheus_values

from chanx.telemetry.recorders import CounterRecorder, HistogramRecorder, OwnedCell

BUCKETS = (0.001, 0.01, 0.1, 1.0, 10.0)
amounts = st.lists(
    st.one_of(
        st.floats(min_value=0, max_value=100, allow_nan=False),
        st.sampled_from(BUCKETS),  # exactly on a bound: the le= bucket counts it
        st.just(math.inf),
    ),
    max_size=40,
)


def _exposition(registry: CollectorRegistry) -> list[str]:
    # _created carries the creation time, which differs between registries.
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def _pair() -> tuple[CollectorRegistry, CollectorRegistry]:
    return CollectorRegistry(), CollectorRegistry()


@given(amounts)
@settings(max_examples=60, deadline=None)
def test_histogram_recorder_matches_observe(values: list[float]) -> None:
    fast_registry, public_registry = _pair()
    fast = Histogram("h", "d", ["l"], registry=fast_registry, buckets=BUCKETS)
    public = Histogram("h", "d", ["l"], registry=public_registry, buckets=BUCKETS)
    recorder = HistogramRecorder(fast.labels("x"))
    assert recorder.observe != fast.labels("x").observe  # the direct path is used
    public_child = public.labels("x")
    for value in values:
        recorder.observe(value)
        public_child.observe(value)
    assert _exposition(fast_registry) == _exposition(public_registry)


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=40))
@settings(max_examples=30, deadline=None)
def test_counter_recorder_matches_inc(values: list[float]) -> None:
    fast_registry, public_registry = _pair()
    fast = Counter("c", "d", ["l"], registry=fast_registry)
    public = Counter("c", "d", ["l"], registry=public_registry)
    recorder = CounterRecorder(fast.labels("x"))
    public_child = public.labels("x")
    for value in values:
        recorder.inc(value)
        public_child.inc(value)
    assert _exposition(fast_registry) == _exposition(public_registry)


def test_nan_is_summed_but_in_no_bucket_as_with_observe() -> None:
    fast_registry, public_registry = _pair()
    fast = Histogram("h", "d", registry=fast_registry, buckets=BUCKETS)
    public = Histogram("h", "d", registry=public_registry, buckets=BUCKETS)
    HistogramRecorder(fast).observe(math.nan)
    public.observe(math.nan)
    assert _exposition(fast_registry) == _exposition(public_registry)


class _Opaque:
    """A child without prometheus_client's private cells (another version)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []

    def inc(self, amount: float = 1) -> None:
        self.seen.append(("inc", amount))

    def observe(self, amount: float) -> None:
        self.seen.append(("observe", amount))


def test_recorders_fall_back_to_the_public_methods() -> None:
    child = _Opaque()
    CounterRecorder(child).inc(2)
    HistogramRecorder(child).observe(0.5)
    assert child.seen == [("inc", 2), ("observe", 0.5)]


def test_multiprocess_cells_are_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under PROMETHEUS_MULTIPROC_DIR the cells are mmap files: a scrape of the
    directory sees what the recorder wrote."""
    from prometheus_client import multiprocess

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(
        prometheus_values,
        "ValueClass",
        prometheus_values.get_value_class(),  # type: ignore[no-untyped-call]
    )
    histogram = Histogram("mp_h", "d", registry=None, buckets=BUCKETS)
    counter = Counter("mp_c", "d", registry=None)
    HistogramRecorder(histogram).observe(0.05)
    CounterRecorder(counter).inc(3)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    text = generate_latest(registry).decode()
    assert 'mp_h_bucket{le="0.1"} 1.0' in text
    assert 'mp_h_bucket{le="0.01"} 0.0' in text
    assert "mp_c_total 3.0" in text


def _in_thread(work: Callable[[], None]) -> None:
    """Run ``work`` in a new thread and wait for it (it must not hang)."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # surfaced in the test's thread
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the thread hung"
    assert not failures, failures


def test_adds_from_every_thread_reach_the_scrape() -> None:
    """The owning thread adds without the lock, others with it, the public API
    as always: run at once, no add is lost."""
    registry = CollectorRegistry()
    counter = Counter("c", "d", ["l"], registry=registry)
    histogram = Histogram("h", "d", registry=registry, buckets=BUCKETS)
    child = counter.labels("x")
    owner_counter, owner_histogram = (
        CounterRecorder(child),
        HistogramRecorder(histogram),
    )
    rounds = 20_000
    start = threading.Barrier(3)

    def owner() -> None:
        start.wait()
        for _ in range(rounds):
            owner_counter.inc(1)
            owner_histogram.observe(0.05)

    def other_recorder() -> None:
        counter_, histogram_ = CounterRecorder(child), HistogramRecorder(histogram)
        start.wait()
        for _ in range(rounds):
            counter_.inc(1)
            histogram_.observe(5.0)

    def public_api() -> None:
        start.wait()
        for _ in range(rounds):
            child.inc(1)
            histogram.observe(0.0005)

    threads = [threading.Thread(target=f) for f in (other_recorder, public_api)]
    for thread in threads:
        thread.start()
    owner()
    for thread in threads:
        thread.join(timeout=60)
    text = generate_latest(registry).decode()
    assert f'c_total{{l="x"}} {3.0 * rounds}' in text
    assert f"h_count {3.0 * rounds}" in text
    assert f'h_bucket{{le="0.001"}} {float(rounds)}' in text
    assert f'h_bucket{{le="0.1"}} {2.0 * rounds}' in text
    assert f'h_bucket{{le="10.0"}} {3.0 * rounds}' in text


def test_the_owning_thread_adds_while_another_holds_the_cell_lock() -> None:
    """Per-frame samples never wait for a scrape or another thread's add."""
    registry = CollectorRegistry()
    child = Counter("c", "d", ["l"], registry=registry).labels("x")
    # The thread making the recorder owns the cell; hang here means it locked.
    with child._value._lock:
        _in_thread(lambda: CounterRecorder(child).inc(3))
    assert isinstance(child._value, OwnedCell)
    CounterRecorder(child).inc(2)  # not the owner: through the lock
    assert 'c_total{l="x"} 5.0' in generate_latest(registry).decode()


def test_the_owning_thread_observes_while_another_holds_the_cell_locks() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("h", "d", registry=registry, buckets=BUCKETS)
    cells = [histogram._sum, *histogram._buckets]
    for cell in cells:
        cell._lock.acquire()
    try:
        _in_thread(lambda: HistogramRecorder(histogram).observe(0.05))
    finally:
        for cell in cells:
            cell._lock.release()
    HistogramRecorder(histogram).observe(5.0)  # not the owner: through the locks
    text = generate_latest(registry).decode()
    assert 'h_bucket{le="0.1"} 1.0' in text
    assert 'h_bucket{le="10.0"} 2.0' in text
    assert "h_sum 5.05" in text


def test_two_hooks_on_one_registry_count_into_the_same_samples() -> None:
    registry = CollectorRegistry()
    child = Counter("c", "d", ["l"], registry=registry).labels("x")
    first, second = CounterRecorder(child), CounterRecorder(child)
    first.inc(1)
    second.inc(2)
    child.inc(4)
    assert 'c_total{l="x"} 7.0' in generate_latest(registry).decode()
