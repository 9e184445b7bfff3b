"""SLO gates: thresholds a load-test run must stay within, and their verdict.

Thresholds come from defaults, then an optional JSON file, then command-line
options (each later source wins). The verdict works on plain
:class:`EntryStats` rows, so pytest checks it without importing locust.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, cast

__all__ = [
    "DUPLICATE_TYPE",
    "LOST_TYPE",
    "ROUND_TRIPS",
    "EntryStats",
    "Samples",
    "Thresholds",
    "Verdict",
    "evaluate",
    "load_thresholds",
]

#: Request types of the loss-accounting rows: every failure is one message.
LOST_TYPE = "LOST"
DUPLICATE_TYPE = "DUPLICATE"
#: Request names whose p99 the ``max_p99_ms`` gate checks: client -> server -> client.
ROUND_TRIPS = ("ping", "chat echo", "broadcast echo")


@dataclass(frozen=True)
class Thresholds:
    """Limits of a passing run.

    Attributes:
        max_error_rate: Failed exchanges / all exchanges, loss rows excluded.
        max_lost: Messages sent to a connection that never reached it.
        max_duplicates: Messages a connection received more than once.
        max_p99_ms: p99 of each round trip in :data:`ROUND_TRIPS`, milliseconds.
    """

    max_error_rate: float = 0.01
    max_lost: int = 0
    max_duplicates: int = 0
    max_p99_ms: float = 1000.0


@dataclass(frozen=True)
class EntryStats:
    """One row of locust's statistics (one request type and name)."""

    type: str
    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Verdict:
    """The measured values the gates compared, and what broke."""

    error_rate: float
    lost: int
    duplicates: int
    worst_p99_ms: float
    violations: list[str]

    @property
    def passed(self) -> bool:
        """No gate was exceeded."""
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the run's summary file)."""
        return {**asdict(self), "passed": self.passed}


class Samples:
    """Exact response times per request name, for percentiles below 1 ms.

    Locust rounds times under 100 ms to whole milliseconds, so a 0.4 ms round
    trip would count as 0 ms. Past ``cap`` samples per name, reservoir
    sampling keeps memory bounded and the sample uniform.
    """

    def __init__(self, cap: int = 200_000, seed: int = 0) -> None:
        self.cap = cap
        self._values: dict[str, list[float]] = {}
        self._seen: dict[str, int] = {}
        self._random = random.Random(seed)

    def add(self, name: str, milliseconds: float) -> None:
        """Record one response time of ``name``."""
        values = self._values.setdefault(name, [])
        seen = self._seen.get(name, 0) + 1
        self._seen[name] = seen
        if len(values) < self.cap:
            values.append(milliseconds)
            return
        slot = self._random.randrange(seen)
        if slot < self.cap:
            values[slot] = milliseconds

    def percentile(self, name: str, fraction: float) -> float | None:
        """The ``fraction`` (0..1) percentile of ``name`` (nearest rank), or ``None``."""
        values = sorted(self._values.get(name, ()))
        if not values:
            return None
        rank = max(1, math.ceil(fraction * len(values)))
        return values[rank - 1]

    def kept(self, name: str) -> int:
        """How many samples of ``name`` are held."""
        return len(self._values.get(name, ()))

    def clear(self) -> None:
        """Forget every sample."""
        self._values.clear()
        self._seen.clear()


def load_thresholds(
    path: str | Path | None = None, overrides: Mapping[str, float | None] = {}
) -> Thresholds:
    """Defaults, updated from the JSON object in ``path``, then from ``overrides``.

    ``None`` values in ``overrides`` (options not given) are skipped.

    Raises:
        ValueError: The file is not a JSON object of known, numeric thresholds.
    """
    names = {item.name for item in fields(Thresholds)}
    values: dict[str, float] = {}
    if path is not None:
        try:
            loaded = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read SLO file {path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"SLO file {path} must hold a JSON object")
        values.update(loaded)
    values.update({key: value for key, value in overrides.items() if value is not None})
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown SLO threshold(s) {unknown}; known: {sorted(names)}")
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"SLO threshold {key} must be a number, got {value!r}")
        if value < 0:
            raise ValueError(f"SLO threshold {key} must not be negative")
    return replace(Thresholds(), **cast(dict[str, Any], values))


def evaluate(entries: Iterable[EntryStats], thresholds: Thresholds) -> Verdict:
    """Compare a run's statistics with ``thresholds``."""
    rows = list(entries)
    lost = sum(row.failures for row in rows if row.type == LOST_TYPE)
    duplicates = sum(row.failures for row in rows if row.type == DUPLICATE_TYPE)
    exchanges = [row for row in rows if row.type not in (LOST_TYPE, DUPLICATE_TYPE)]
    requests = sum(row.requests for row in exchanges)
    failures = sum(row.failures for row in exchanges)
    error_rate = failures / requests if requests else 0.0
    trips = [row for row in exchanges if row.name in ROUND_TRIPS and row.requests]
    worst = max(trips, key=lambda row: row.p99_ms, default=None)
    violations: list[str] = []
    if not requests:
        violations.append("no exchange was recorded")
    if error_rate > thresholds.max_error_rate:
        violations.append(
            f"error rate {error_rate:.4f} > max_error_rate {thresholds.max_error_rate}"
        )
    if lost > thresholds.max_lost:
        violations.append(f"lost messages {lost} > max_lost {thresholds.max_lost}")
    if duplicates > thresholds.max_duplicates:
        violations.append(
            f"duplicate messages {duplicates} > "
            f"max_duplicates {thresholds.max_duplicates}"
        )
    if worst is not None and worst.p99_ms > thresholds.max_p99_ms:
        violations.append(
            f"p99 of {worst.name!r} {worst.p99_ms:g} ms > "
            f"max_p99_ms {thresholds.max_p99_ms:g}"
        )
    return Verdict(
        error_rate=error_rate,
        lost=lost,
        duplicates=duplicates,
        worst_p99_ms=worst.p99_ms if worst is not None else 0.0,
        violations=violations,
    )
