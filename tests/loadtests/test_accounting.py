"""Loss accounting and SLO gates of ``loadtests/`` (pure logic, no locust import).

The locust run itself is covered by ``test_locust_smoke.py``; here the
decisions behind its failure rows are pinned down: which messages a
connection must receive, what counts as lost or duplicated, and which
statistics make a run fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.gates import (
    DUPLICATE_TYPE,
    LOST_TYPE,
    EntryStats,
    Samples,
    Thresholds,
    evaluate,
    load_thresholds,
)
from loadtests.ledger import Inbox, SentLedger, decode_body, encode_body


def _body(sender: str, seq: int, kind: str = "chat") -> dict[str, object]:
    body = decode_body(encode_body(sender, seq, kind))
    assert body is not None
    return body


def test_message_body_round_trips_and_foreign_text_is_ignored() -> None:
    assert _body("ChatUser-1-1", 7)["seq"] == 7
    assert decode_body("hello") is None
    assert decode_body('{"sender": "x"}') is None
    assert decode_body("{not json") is None
    assert decode_body(None) is None


def test_only_messages_sent_after_joining_are_expected() -> None:
    ledger = SentLedger()
    ledger.record("s", "room", 1, started=10.0)
    ledger.record("s", "room", 2, started=20.0)
    ledger.record("s", "room", 3, started=30.0)
    ledger.record("other", "elsewhere", 1, started=25.0)
    inbox = Inbox("me", {"room": "chat"}, joined_at=15.0)
    inbox.receive(_body("s", 2))
    # seq 1 predates the join; seq 3 is missing.
    assert inbox.missing(ledger, until=40.0) == {"chat": 1}
    # Sent after the cut-off: not (yet) expected.
    assert inbox.missing(ledger, until=25.0) == {}
    expected = inbox.expected(ledger, until=40.0)
    assert [(e.sender, e.seq, e.age) for e in expected] == [
        ("s", 2, 20.0),
        ("s", 3, 10.0),
    ]
    assert [(e.sender, e.seq) for e in inbox.unseen(expected)] == [("s", 3)]


def test_losses_are_counted_per_kind_and_late_arrivals_clear_them() -> None:
    ledger = SentLedger()
    for seq in range(1, 6):
        ledger.record("pub", "bcast", seq, started=float(seq))
    ledger.record("ann", "announcements", 1, started=3.0)
    inbox = Inbox("me", {"bcast": "broadcast", "announcements": "announce"}, 0.0)
    for seq in (1, 2, 4):
        inbox.receive(_body("pub", seq, "broadcast"))
    assert inbox.missing(ledger, until=10.0) == {"broadcast": 2, "announce": 1}
    # Out of order is not loss once everything has arrived.
    inbox.receive(_body("pub", 5, "broadcast"))
    inbox.receive(_body("pub", 3, "broadcast"))
    inbox.receive(_body("ann", 1, "announce"))
    assert inbox.missing(ledger, until=10.0) == {}


def test_duplicates_and_own_messages_are_flagged() -> None:
    inbox = Inbox("me", {"room": "chat"}, 0.0)
    first = inbox.receive(_body("me", 1))
    again = inbox.receive(_body("me", 1))
    other = inbox.receive(_body("you", 1))
    assert (first.own, first.duplicate) == (True, False)
    assert again.duplicate
    assert (other.own, other.duplicate) == (False, False)
    assert other.latency_ms >= 0.0


def _row(
    type_: str, name: str, requests: int, failures: int, p99: float = 1.0
) -> EntryStats:
    return EntryStats(type_, name, requests, failures, rps=1.0, p50_ms=0.5, p99_ms=p99)


def test_a_clean_run_passes_the_default_gates() -> None:
    verdict = evaluate(
        [_row("WS", "ping", 100, 0), _row("WS", "chat fanout", 500, 0)], Thresholds()
    )
    assert verdict.passed, verdict.violations
    assert verdict.worst_p99_ms == 1.0


def test_each_gate_reports_what_it_measured() -> None:
    rows = [
        _row("WS", "ping", 100, 2, p99=12.5),
        _row("WS", "chat echo", 100, 0, p99=40.0),
        _row("WS", "chat fanout", 800, 0, p99=900.0),  # not a round trip
        _row(LOST_TYPE, "chat", 3, 3),
        _row(DUPLICATE_TYPE, "broadcast", 1, 1),
    ]
    strict = Thresholds(
        max_error_rate=0.001, max_lost=0, max_duplicates=0, max_p99_ms=20
    )
    verdict = evaluate(rows, strict)
    assert not verdict.passed
    assert (verdict.lost, verdict.duplicates) == (3, 1)
    # Loss rows are not exchanges: 2 failures out of 1000.
    assert verdict.error_rate == pytest.approx(0.002)
    text = " | ".join(verdict.violations)
    assert "error rate 0.0020" in text
    assert "lost messages 3" in text
    assert "duplicate messages 1" in text
    assert "p99 of 'chat echo' 40 ms > max_p99_ms 20" in text
    lenient = Thresholds(
        max_error_rate=0.01, max_lost=3, max_duplicates=1, max_p99_ms=50
    )
    assert evaluate(rows, lenient).passed


def test_a_run_without_exchanges_fails() -> None:
    assert evaluate([], Thresholds()).violations == ["no exchange was recorded"]


def test_thresholds_layer_defaults_file_and_options(tmp_path: Path) -> None:
    slo = tmp_path / "slo.json"
    slo.write_text(json.dumps({"max_p99_ms": 250, "max_lost": 5}))
    thresholds = load_thresholds(slo, {"max_lost": 1, "max_error_rate": None})
    assert thresholds == Thresholds(max_error_rate=0.01, max_lost=1, max_p99_ms=250)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"max_p99": 1}', "unknown SLO threshold(s) ['max_p99']"),
        ('{"max_lost": "none"}', "max_lost must be a number"),
        ('{"max_lost": -1}', "max_lost must not be negative"),
        ("[1]", "must hold a JSON object"),
        ("{", "cannot read SLO file"),
    ],
)
def test_bad_threshold_files_are_explained(
    tmp_path: Path, content: str, message: str
) -> None:
    slo = tmp_path / "slo.json"
    slo.write_text(content)
    with pytest.raises(ValueError, match="SLO") as info:
        load_thresholds(slo)
    assert message in str(info.value)


def test_samples_give_exact_sub_millisecond_percentiles() -> None:
    samples = Samples()
    for value in range(1, 101):
        samples.add("WS ping", value / 1000)
    assert samples.percentile("WS ping", 0.5) == pytest.approx(0.05)
    assert samples.percentile("WS ping", 0.99) == pytest.approx(0.099)
    assert samples.percentile("WS other", 0.99) is None


def test_samples_stay_bounded() -> None:
    samples = Samples(cap=50)
    for value in range(10_000):
        samples.add("x", float(value))
    p99 = samples.percentile("x", 0.99)
    assert samples.kept("x") == 50
    assert p99 is not None
    assert p99 > 5_000  # still spread over the whole range
