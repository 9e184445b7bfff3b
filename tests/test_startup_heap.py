"""chanx.startup_heap: the switch and the freeze itself (in this process)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from chanx.startup_heap import GC_FREEZE_ENV, freeze_startup_heap, gc_freeze_wanted


@pytest.fixture
def unfrozen() -> Iterator[None]:
    # Leave the test process as it was: later tests may count on collection.
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.parametrize("value", ["", "1", "true", "YES", " on "])
def test_freeze_is_on_unless_switched_off(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(GC_FREEZE_ENV, value)
    assert gc_freeze_wanted() is True


def test_freeze_is_on_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GC_FREEZE_ENV, raising=False)
    assert gc_freeze_wanted() is True


@pytest.mark.parametrize("value", ["0", "false", "No", "off"])
def test_freeze_can_be_switched_off(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(GC_FREEZE_ENV, value)
    assert gc_freeze_wanted() is False


def test_a_misspelt_switch_is_refused_with_a_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(GC_FREEZE_ENV, "maybe")
    with pytest.raises(ValueError, match=r"CHANX_GC_FREEZE='maybe'.*use 0"):
        gc_freeze_wanted()


def test_freezing_exempts_what_exists_and_not_what_comes_later(
    unfrozen: None,
) -> None:
    before: list[object] = []  # a list: plain object() is never tracked
    assert any(o is before for o in gc.get_objects())
    frozen = freeze_startup_heap()
    # This process has imported Django, pydantic and the test suite.
    assert frozen > 10_000
    assert frozen == gc.get_freeze_count()
    # gc.get_objects() lists what collections still visit.
    assert not any(o is before for o in gc.get_objects())
    after: list[object] = []
    assert any(o is after for o in gc.get_objects())


def test_garbage_is_collected_before_the_freeze(unfrozen: None) -> None:
    class Cycle:
        me: object = None

    garbage = Cycle()
    garbage.me = garbage
    del garbage
    freeze_startup_heap()
    # Frozen objects are not listed: unfreeze to see whether it was kept.
    gc.unfreeze()
    assert not any(type(o) is Cycle for o in gc.get_objects())
