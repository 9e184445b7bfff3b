"""The end-of-run summary: one line per request, totals, SLO verdict.

Percentiles come from :class:`loadtests.gates.Samples` (exact) when there are
samples, from locust's rounded histogram otherwise (e.g. the HTTP rows that
locust's own client records).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadtests.gates import EntryStats, Samples, Thresholds, Verdict, evaluate

if TYPE_CHECKING:
    from locust.stats import RequestStats, StatsEntry

__all__ = ["Summary", "summarize"]


@dataclass(frozen=True)
class Summary:
    """What a run measured and whether it passed."""

    entries: list[EntryStats]
    total_requests: int
    total_rps: float
    thresholds: Thresholds
    verdict: Verdict

    def text(self) -> str:
        """Human-readable table and verdict."""
        lines = [
            "chanx load test summary",
            f"{'type':<10} {'name':<24} {'count':>8} {'fails':>6} "
            f"{'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}",
        ]
        for row in self.entries:
            lines.append(
                f"{row.type:<10} {row.name:<24} {row.requests:>8} {row.failures:>6} "
                f"{row.rps:>8.1f} {row.p50_ms:>8.2f} {row.p99_ms:>8.2f}"
            )
        v = self.verdict
        lines.append(
            f"total {self.total_requests} exchanges, {self.total_rps:.1f}/s; "
            f"error rate {v.error_rate:.4f}, lost {v.lost}, duplicates "
            f"{v.duplicates}, worst round-trip p99 {v.worst_p99_ms:.2f} ms"
        )
        if v.passed:
            lines.append("SLO gates: PASSED")
        else:
            lines.extend(f"SLO gate FAILED: {problem}" for problem in v.violations)
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, written next to locust's reports."""
        return {
            "entries": [row.__dict__ for row in self.entries],
            "total_requests": self.total_requests,
            "total_rps": self.total_rps,
            "thresholds": self.thresholds.__dict__,
            "verdict": self.verdict.as_dict(),
        }


def _row(entry: StatsEntry, samples: Samples) -> EntryStats:
    key = f"{entry.method} {entry.name}"
    p50 = samples.percentile(key, 0.50)
    p99 = samples.percentile(key, 0.99)
    return EntryStats(
        type=str(entry.method),
        name=str(entry.name),
        requests=entry.num_requests,
        failures=entry.num_failures,
        rps=float(entry.total_rps),
        p50_ms=p50
        if p50 is not None
        else float(entry.get_response_time_percentile(0.5)),
        p99_ms=p99
        if p99 is not None
        else float(entry.get_response_time_percentile(0.99)),
    )


def summarize(stats: RequestStats, samples: Samples, thresholds: Thresholds) -> Summary:
    """Build the summary of locust's ``stats`` and check the gates."""
    rows = sorted(
        (_row(entry, samples) for entry in stats.entries.values()),
        key=lambda row: (row.type, row.name),
    )
    return Summary(
        entries=rows,
        total_requests=stats.total.num_requests,
        total_rps=float(stats.total.total_rps),
        thresholds=thresholds,
        verdict=evaluate(rows, thresholds),
    )
