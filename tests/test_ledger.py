"""The server's ledger: real SQLite files, threads that record at once, budgets at their boundary,
the summary's figures, and no credential in any row or byte of the file."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from claude_magic.api import redaction
from claude_magic.core.pricing import cost
from claude_magic.server.ledger import BudgetExceeded, Budgets, Ledger, Reservation, default_path

SONNET = "claude-sonnet-5"
"""$2 a million input tokens, $10 output: 35,000 input tokens cost $0.07."""


class Clock:
    def __init__(self, at: str) -> None:
        self.now = datetime.fromisoformat(at)

    def __call__(self) -> datetime:
        return self.now


OpenLedger = Callable[..., Ledger]


@pytest.fixture
def open_ledger(tmp_path: Path) -> Iterator[OpenLedger]:
    """``Ledger(path or tmp_path/ledger.sqlite3, budgets, clock)``, closed after the test."""
    opened: list[Ledger] = []

    def open_(budgets: Budgets | None = None, clock: Clock | None = None, path: Path | None = None) -> Ledger:
        ledger = Ledger(path or tmp_path / "ledger.sqlite3", budgets or Budgets(), *([clock] if clock else []))
        opened.append(ledger)
        return ledger

    yield open_
    for ledger in opened:
        ledger.close()


def spend(
    ledger: Ledger, input_tokens: int, *, model: str = SONNET, notebook: str | None = "/nb/a.ipynb", status: int = 200
) -> float | None:
    usage = {"input_tokens": input_tokens, "output_tokens": 0}
    return ledger.record(kernel="k-1", notebook=notebook, model=model, usage=usage, request_id="req_1", status=status)


def test_a_row_per_request_with_tokens_by_kind_its_cost_and_status_kept_in_a_private_wal_file(tmp_path: Path, open_ledger: OpenLedger) -> None:
    path = tmp_path / "data" / "ledger.sqlite3"
    usage = {
        "input_tokens": 1_000,
        "output_tokens": 500,
        "cache_creation_input_tokens": 12_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 10_000, "ephemeral_1h_input_tokens": 2_000},
        "cache_read_input_tokens": 100_000,
        "server_tool_use": {"web_search_requests": 2},
        "service_tier": "standard",
    }
    ledger = open_ledger(clock=Clock("2026-11-05T10:00:00+00:00"), path=path)
    spent = ledger.record(kernel="k-1", notebook="/nb/a.ipynb", model=SONNET, usage=usage, request_id="req_011", status=200)
    ledger.close()

    assert spent == pytest.approx(cost(SONNET, usage)) and spent == pytest.approx(
        (1_000 * 2 + 500 * 10 + 10_000 * 2.5 + 2_000 * 4 + 100_000 * 0.2) / 1e6 + 2 * 0.01  # and two web searches
    )
    assert open_ledger(path=path).rows() == [
        {
            "at": "2026-11-05T10:00:00.000000+00:00",
            "user": "",
            "kernel": "k-1",
            "notebook": "/nb/a.ipynb",
            "model": SONNET,
            "input_tokens": 1_000,
            "output_tokens": 500,
            "cache_write_tokens": 10_000,
            "cache_write_1h_tokens": 2_000,
            "cache_read_tokens": 100_000,
            "web_search_requests": 2,
            "web_fetch_requests": 0,
            "cost_usd": spent,
            "request_id": "req_011",
            "status": 200,
        }
    ]
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_threads_recording_at_once_lose_no_row(open_ledger: OpenLedger) -> None:
    ledger = open_ledger()
    start = threading.Barrier(8)

    def kernel(n: int) -> None:
        start.wait()
        for _ in range(50):
            ledger.record(kernel=f"k-{n}", notebook=None, model=SONNET, usage={"input_tokens": n + 1}, request_id=None, status=200)

    threads = [threading.Thread(target=kernel, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = ledger.rows()
    assert len(rows) == 400
    assert sum(row["input_tokens"] for row in rows) == 50 * sum(range(1, 9))


def test_a_budget_lets_a_request_meet_it_exactly_and_refuses_one_that_would_pass_it(open_ledger: OpenLedger) -> None:
    ledger = open_ledger(Budgets(daily_usd=0.10))
    spend(ledger, 35_000)  # $0.07
    ledger.check(0.03).release()
    with pytest.raises(BudgetExceeded):
        ledger.check(0.0301)
    with pytest.raises(BudgetExceeded) as refused:
        ledger.check(0.05)
    assert str(refused.value) == (
        "the daily budget of $0.10 has $0.03 left (it renews at midnight UTC); "
        "this request could cost about $0.05, so it was not sent"
    )
    spend(ledger, 15_000)  # $0.03: the budget is spent
    with pytest.raises(BudgetExceeded) as refused:
        ledger.check(0.0004)
    assert str(refused.value) == "the daily budget of $0.10 is spent (it renews at midnight UTC); this request was not sent"


def test_the_day_renews_at_midnight_and_the_month_counts_every_day_of_it(open_ledger: OpenLedger) -> None:
    clock = Clock("2026-11-29T23:59:00+00:00")
    ledger = open_ledger(Budgets(daily_usd=1.00, monthly_usd=1.50), clock)
    spend(ledger, 450_000)  # $0.90
    with pytest.raises(BudgetExceeded, match="the daily budget"):
        ledger.check(0.20)
    clock.now = datetime.fromisoformat("2026-11-30T00:01:00+00:00")
    with pytest.raises(BudgetExceeded) as refused:
        ledger.check(0.70)
    assert str(refused.value) == (
        "the monthly budget of $1.50 has $0.60 left (it renews on the 1st, UTC); "
        "this request could cost about $0.70, so it was not sent"
    )
    ledger.check(0.60).release()
    clock.now = datetime.fromisoformat("2026-12-01T00:00:00+00:00")
    ledger.check(1.00).release()


def test_days_begin_at_midnight_in_the_budgets_time_zone(open_ledger: OpenLedger) -> None:
    clock = Clock("2026-11-05T03:00:00+00:00")  # 22:00 on the 4th in New York
    ledger = open_ledger(Budgets(daily_usd=1.00, timezone="America/New_York"), clock)
    spend(ledger, 450_000)
    clock.now = datetime.fromisoformat("2026-11-05T04:30:00+00:00")  # 23:30 on the 4th there
    with pytest.raises(BudgetExceeded, match=r"renews at midnight America/New_York"):
        ledger.check(0.20)
    clock.now = datetime.fromisoformat("2026-11-05T05:30:00+00:00")  # 00:30 on the 5th there
    ledger.check(0.20).release()
    assert ledger.summary()["today"]["date"] == "2026-11-05"


def checked_at_once(ledger: Ledger, *estimates: float) -> list[Reservation | BudgetExceeded]:
    """``ledger.check`` of each estimate, from as many threads let go at the same instant."""
    start = threading.Barrier(len(estimates))
    outcomes: list[Reservation | BudgetExceeded] = []

    def check(estimate: float) -> None:
        start.wait()
        try:
            outcomes.append(ledger.check(estimate))
        except BudgetExceeded as refused:
            outcomes.append(refused)

    threads = [threading.Thread(target=check, args=(estimate,)) for estimate in estimates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_requests_that_fit_alone_but_not_together_do_not_both_pass(open_ledger: OpenLedger) -> None:
    ledger = open_ledger(Budgets(daily_usd=0.10))
    first = ledger.check(0.06)
    with pytest.raises(BudgetExceeded, match=r"has \$0.04 left"):
        ledger.check(0.06)
    # it cost $0.02: the rest of its estimate is free again
    usage = {"input_tokens": 10_000}
    ledger.record(kernel="k-1", notebook=None, model=SONNET, usage=usage, request_id=None, status=200, reservation=first)
    ledger.check(0.08).release()  # all that is left

    for _ in range(30):  # at the same instant, from two threads, round after round
        outcomes = checked_at_once(ledger, 0.05, 0.05)
        winners = [outcome for outcome in outcomes if isinstance(outcome, Reservation)]
        assert len(winners) == 1 and len(outcomes) == 2
        winners[0].release()


def test_a_reservation_nobody_keeps_holds_nothing(open_ledger: OpenLedger) -> None:
    ledger = open_ledger(Budgets(daily_usd=0.10))
    ledger.check(0.06)  # used as a plain yes-or-no
    ledger.check(0.06).release()


def test_the_summary_gives_today_this_month_by_notebook_and_by_model(open_ledger: OpenLedger) -> None:
    clock = Clock("2026-10-31T12:00:00+00:00")
    ledger = open_ledger(Budgets(daily_usd=1.00), clock)
    spend(ledger, 1_000_000)  # last month: in no figure
    clock.now = datetime.fromisoformat("2026-11-04T12:00:00+00:00")
    spend(ledger, 100_000, notebook="/nb/b.ipynb")  # $0.20 yesterday
    clock.now = datetime.fromisoformat("2026-11-05T09:00:00+00:00")
    spend(ledger, 50_000)  # $0.10
    spend(ledger, 0, notebook="/nb/b.ipynb", status=529)
    spend(ledger, 1_000, model="claude-future-9", notebook=None)
    in_flight = ledger.check(0.05)

    def totals(requests: int, cost_usd: float, input_tokens: int, errors: int = 0, unpriced: int = 0) -> dict:
        return {
            "requests": requests,
            "errors": errors,
            "cost_usd": cost_usd,
            "unpriced_requests": unpriced,
            "tokens": {"input": input_tokens, "output": 0, "cache_write": 0, "cache_read": 0},
        }

    summary = ledger.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary == {
        "timezone": "UTC",
        "today": {"date": "2026-11-05", **totals(3, 0.10, 51_000, 1, 1), "budget_usd": 1.00, "left_usd": 0.85},
        "month": {"month": "2026-11", **totals(4, 0.30, 151_000, 1, 1), "budget_usd": None, "left_usd": None},
        "by_notebook": [
            {"notebook": "/nb/b.ipynb", **totals(2, 0.20, 100_000, errors=1)},
            {"notebook": "/nb/a.ipynb", **totals(1, 0.10, 50_000)},
            {"notebook": None, **totals(1, 0.0, 1_000, unpriced=1)},
        ],
        "by_model": [
            {"model": SONNET, **totals(3, 0.30, 150_000, errors=1)},
            {"model": "claude-future-9", **totals(1, 0.0, 1_000, unpriced=1)},
        ],
    }
    in_flight.release()


def test_no_row_and_no_byte_of_the_file_holds_a_credential(tmp_path: Path, open_ledger: OpenLedger) -> None:
    key = "sk-ant-api03-LedgerTestKey0123456789abcdef"
    token = "per-kernel-token-7f3a9c"  # not shaped like a key: known to redaction as a credential in use
    redaction.remember([token])
    path = tmp_path / "ledger.sqlite3"
    ledger = open_ledger(path=path)
    ledger.record(
        kernel=f"k-{token}",
        notebook=f"/home/me/{key}/notes {token}.ipynb",
        model=f"claude-sonnet-5 {key}",
        usage={
            "input_tokens": 10,
            "output_tokens": key,
            "api_key": key,
            "cache_creation": {"ephemeral_1h_input_tokens": token},
            "server_tool_use": {"web_search_requests": key},
        },
        request_id=f"req_{key}",
        status=200,
    )
    (row,) = ledger.rows()
    assert row["notebook"] == "/home/me/sk-ant-***/notes ***.ipynb" and row["kernel"] == "k-***"
    assert row["output_tokens"] == 0 and row["web_search_requests"] == 0 and row["cache_write_1h_tokens"] == 0
    ledger.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert key.encode() not in stored and token.encode() not in stored and b"LedgerTestKey" not in stored


def test_budgets_are_dollars_and_a_known_time_zone() -> None:
    with pytest.raises(ValueError, match="a budget is a number of dollars"):
        Budgets(daily_usd=-1)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        Budgets(timezone="Mars/Olympus")
    assert Budgets(monthly_usd=20, timezone="Europe/Paris").zone.utcoffset(datetime(2026, 7, 1)) == timedelta(hours=2)
    assert Budgets().zone is timezone.utc


def test_the_ledger_lives_in_the_servers_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    assert default_path() == tmp_path / "data" / "claude_magic" / "ledger.sqlite3"


# --- a Hub's users ---------------------------------------------------------------------------------


def spend_as(ledger: Ledger, user: str, input_tokens: int) -> None:
    ledger.record(user=user, kernel="k-1", notebook=None, model=SONNET, usage={"input_tokens": input_tokens}, request_id=None, status=200)


def test_a_users_budget_counts_that_users_rows_and_in_flight_requests_only(open_ledger: OpenLedger) -> None:
    ledger = open_ledger(Budgets(daily_usd=1.00), Clock("2026-11-05T10:00:00+00:00"))
    students = Budgets(daily_usd=0.10)
    spend_as(ledger, "alice", 40_000)  # $0.08
    spend_as(ledger, "bob", 200_000)  # $0.40: bob's spending is not alice's
    held = ledger.check(0.01, user="alice", budgets=students, owner="alice (group students)")
    with pytest.raises(BudgetExceeded) as refused:
        ledger.check(0.02, user="alice", budgets=students, owner="alice (group students)")
    assert str(refused.value) == (
        "alice (group students)'s daily budget of $0.10 has $0.01 left (it renews at midnight UTC); "
        "this request could cost about $0.02, so it was not sent"
    )
    ledger.check(0.05, user="bob", budgets=Budgets(daily_usd=1.00)).release()  # staff: bob has $0.60 of his own left
    held.release()
    with pytest.raises(BudgetExceeded, match="^the daily budget of \\$1.00 has \\$0.52 left"):  # the Hub's own, over everyone
        ledger.check(0.55, user="bob", budgets=Budgets(daily_usd=5.00))
    assert ledger.spent("alice", students) == {"today_usd": 0.08, "month_usd": 0.08}


def test_spending_by_user_and_by_day_for_the_last_30_days_empty_days_included(open_ledger: OpenLedger) -> None:
    clock = Clock("2026-11-03T23:30:00+00:00")  # the 4th in Paris
    ledger = open_ledger(Budgets(timezone="Europe/Paris"), clock)
    spend_as(ledger, "alice", 50_000)  # $0.10
    clock.now = datetime.fromisoformat("2026-11-05T10:00:00+00:00")
    spend_as(ledger, "alice", 5_000)
    spend_as(ledger, "bob", 100_000)
    days = ledger.by_day(30)
    assert len(days) == 30 and days[0]["date"] == "2026-10-07" and days[-1]["date"] == "2026-11-05"
    by_date = {day["date"]: day for day in days}
    assert by_date["2026-11-04"] == {"date": "2026-11-04", "cost_usd": 0.1, "requests": 1, "by_user": {"alice": 0.1}}
    assert by_date["2026-11-05"]["by_user"] == {"alice": 0.01, "bob": 0.2}
    assert by_date["2026-11-03"]["requests"] == 0
    users = ledger.by_user()
    assert [(u["user"], u["month"]["cost_usd"], u["today"]["cost_usd"]) for u in users] == [("bob", 0.2, 0.2), ("alice", 0.11, 0.01)]


def test_a_ledger_of_version_1_gains_the_user_column_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE requests (id INTEGER PRIMARY KEY, at TEXT NOT NULL, kernel TEXT NOT NULL, notebook TEXT, model TEXT NOT NULL, "
        "input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL, "
        "cache_write_1h_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL, web_search_requests INTEGER NOT NULL, "
        "web_fetch_requests INTEGER NOT NULL, cost_usd REAL, request_id TEXT, status INTEGER NOT NULL);"
        "INSERT INTO requests VALUES (1, '2026-11-05T10:00:00.000000+00:00', 'k-0', NULL, 'm', 1, 1, 0, 0, 0, 0, 0, 0.5, NULL, 200);"
    )
    old.close()
    ledger = Ledger(path)
    spend_as(ledger, "alice", 1)
    assert [(row["user"], row["kernel"]) for row in ledger.rows()] == [("", "k-0"), ("alice", "k-1")]
    ledger.close()
