"""The server's ledger: every proxied request's usage and cost in SQLite, and the budgets that refuse one.

One row per request the proxy forwarded: when (UTC), whose (the Hub user; empty on a one-user
server), which kernel, which notebook, which model, its
tokens by kind (input, output, 5-minute and 1-hour cache writes, cache reads, and the server tools'
searches and fetches when the usage has them), its estimated cost (``core.pricing``, the same
figures the kernel's footers show; ``NULL`` for a model with no price), its ``request-id`` and its
HTTP status. Never a credential: the only numbers taken from a usage are the known counts, and
every text (kernel, notebook path, model, request id) goes through ``api.redaction.scrub``, which
removes anything shaped like a key and every credential registered with ``redaction.remember``
(the server registers the key it holds).

The database lives in the server's data directory (:func:`default_path`), in WAL mode so that a
reader never waits for the writer; one connection serves every thread, behind a lock (a row per
API request is far below what that costs). Times are stored as fixed-width ISO 8601 text in UTC,
which sorts as it reads, so a day or a month is a range on the ``at`` index in any time zone.

**Budgets** (:class:`Budgets`): optional daily and monthly ceilings in dollars; the day and the
month begin at midnight in ``Budgets.timezone`` (UTC unless set). :meth:`Ledger.check` refuses a
request whose estimated cost could take a budget past its ceiling, with one line naming the budget
and what is left (:class:`BudgetExceeded`). The ledger's own budgets cover every row; a check for a
``user`` also holds that user's rows to the budgets it is given (a Hub user's, by group).

**Reservations, for requests in flight.** Two requests that each fit alone but not together must
not both pass, yet neither has a row until it ends. So ``check`` holds the estimate as a
:class:`Reservation`, counted against every budget like spent money, until it is settled:

    reservation = ledger.check(estimated_usd)        # raises BudgetExceeded: send nothing
    try:
        ...                                          # send, stream the answer
    finally:
        ledger.record(..., reservation=reservation)  # the real cost replaces the estimate, atomically

and ``reservation.release()`` when nothing was sent after all. A reservation nobody keeps is
released when it is dropped, so ``check`` still works as a plain yes-or-no. Reservations live in
this process: they guard one server's requests; rows are safe with several.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from datetime import time as midnight
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jupyter_core.paths import jupyter_data_dir

from ..api.redaction import scrub
from ..core.pricing import TokenUsage, cost

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    user TEXT NOT NULL DEFAULT '',
    kernel TEXT NOT NULL,
    notebook TEXT,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cache_write_1h_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    web_search_requests INTEGER NOT NULL,
    web_fetch_requests INTEGER NOT NULL,
    cost_usd REAL,
    request_id TEXT,
    status INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_at ON requests (at);
"""
_USER_INDEX = "CREATE INDEX IF NOT EXISTS requests_user_at ON requests (user, at)"
_COLUMNS = (
    "at, user, kernel, notebook, model, input_tokens, output_tokens, cache_write_tokens, cache_write_1h_tokens, "
    "cache_read_tokens, web_search_requests, web_fetch_requests, cost_usd, request_id, status"
)
_TOTALS = (
    "COUNT(*), COALESCE(SUM(status >= 400), 0), TOTAL(cost_usd), COALESCE(SUM(cost_usd IS NULL), 0), "
    "TOTAL(input_tokens), TOTAL(output_tokens), TOTAL(cache_write_tokens + cache_write_1h_tokens), "
    "TOTAL(cache_read_tokens)"
)
TEXT_LIMIT = 4096
"""The most characters a text field keeps (a notebook path, a model name)."""
EPSILON_USD = 1e-9
"""Rounding slack: an estimate that meets what is left exactly still fits."""


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def default_path() -> Path:
    """Where the server keeps its ledger: ``jupyter_data_dir()/claude_magic/ledger.sqlite3``."""
    return Path(jupyter_data_dir()) / "claude_magic" / "ledger.sqlite3"


@dataclass(frozen=True)
class Budgets:
    """Optional ceilings in dollars; days and months begin at midnight in ``timezone`` (an IANA name)."""

    daily_usd: float | None = None
    monthly_usd: float | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        for ceiling in (self.daily_usd, self.monthly_usd):
            if ceiling is not None and not ceiling >= 0:
                raise ValueError(f"a budget is a number of dollars, 0 or more: {ceiling!r}")
        _zone(self.timezone)

    @property
    def zone(self) -> tzinfo:
        return _zone(self.timezone)


def _zone(name: str) -> tzinfo:
    if name == "UTC":
        return timezone.utc  # needs no time-zone database
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} for the budgets (an IANA name, e.g. Europe/Paris)") from None


class BudgetExceeded(Exception):
    """A request that could take a budget past its ceiling; ``str()`` is the one line the user reads."""

    def __init__(
        self, budget: str, ceiling_usd: float, left_usd: float, estimated_usd: float, renews: str, *, owner: str = ""
    ) -> None:
        """``budget``: "daily" or "monthly"; ``owner``: whose it is ("alice (group students)"), or
        empty for the server's own."""
        self.budget, self.ceiling_usd, self.left_usd, self.estimated_usd = budget, ceiling_usd, left_usd, estimated_usd
        if left_usd > 0:
            state = f"has {dollars(left_usd)} left ({renews})"
            cause = f"this request could cost about {dollars(estimated_usd)}, so it was not sent"
        else:
            state, cause = f"is spent ({renews})", "this request was not sent"
        whose = f"{owner}'s {budget} budget" if owner else f"the {budget} budget"
        super().__init__(f"{whose} of {dollars(ceiling_usd)} {state}; {cause}")


def dollars(amount: float) -> str:
    """$5.00, $0.03; a fraction of a cent keeps the digits that say how much ($0.0012)."""
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


class Reservation:
    """A request's estimated cost, held against the budgets from ``check`` until it is recorded or released."""

    def __init__(self, ledger: Ledger, key: int, estimated_usd: float) -> None:
        self.estimated_usd = estimated_usd
        self.key = key
        self._release = weakref.finalize(self, ledger._drop_hold, key)

    def release(self) -> None:
        """Nothing was sent after all: the estimate no longer counts (once; later calls do nothing)."""
        self._release()


@dataclass(frozen=True)
class _Period:
    budget: str
    ceiling_usd: float | None
    since: datetime
    renews: str


@dataclass(frozen=True)
class _Hold:
    user: str
    usd: float


class Ledger:
    """Rows of usage in SQLite, and the budgets checked against them (see the module's docstring)."""

    def __init__(self, path: Path, budgets: Budgets = Budgets(), clock: Callable[[], datetime] = now_utc) -> None:
        self.path = Path(path)
        self.budgets = budgets
        self._clock = clock
        self._lock = threading.RLock()
        self._holds: dict[int, _Hold] = {}
        self._keys = itertools.count()
        self._db = _connect(self.path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- budgets ------------------------------------------------------------------------------------

    def check(
        self, estimated_usd: float, *, user: str = "", budgets: Budgets | None = None, owner: str = ""
    ) -> Reservation:
        """Refuse (:class:`BudgetExceeded`) a request that could pass a budget; else hold its estimate.

        The ledger's own budgets count every row; ``budgets``, when given, count ``user``'s rows
        only (``owner`` names them in the refusal). A model with no price has no estimate: pass 0
        (its rows cost "unknown" and count against no budget).
        """
        estimated = max(float(estimated_usd), 0.0)
        now = self._now()
        with self._lock:
            self._refuse_past(self._periods(now, self.budgets), estimated, None, "")
            if budgets is not None:
                self._refuse_past(self._periods(now, budgets), estimated, user, owner)
            key = next(self._keys)
            self._holds[key] = _Hold(user, estimated)
        return Reservation(self, key, estimated)

    def _refuse_past(self, periods: tuple[_Period, _Period], estimated: float, user: str | None, owner: str) -> None:
        pending = self._pending(user)
        for period in periods:
            if period.ceiling_usd is None:
                continue
            left = period.ceiling_usd - self._spent_since(period.since, user) - pending
            if estimated > left + EPSILON_USD:
                raise BudgetExceeded(
                    period.budget, period.ceiling_usd, max(left, 0.0), estimated, period.renews, owner=owner
                )

    def _pending(self, user: str | None) -> float:
        """The estimates of requests in flight (``user``'s, or everyone's)."""
        return sum(hold.usd for hold in self._holds.values() if user is None or hold.user == user)

    def _drop_hold(self, key: int) -> None:
        with self._lock:
            self._holds.pop(key, None)

    def _periods(self, now: datetime, budgets: Budgets) -> tuple[_Period, _Period]:
        """Today and this month in the budgets' time zone, each from its first instant (in UTC)."""
        zone = budgets.zone
        today = datetime.combine(now.astimezone(zone).date(), midnight(), tzinfo=zone)
        where = "UTC" if budgets.timezone == "UTC" else budgets.timezone
        return (
            _Period("daily", budgets.daily_usd, today.astimezone(timezone.utc), f"it renews at midnight {where}"),
            _Period(
                "monthly",
                budgets.monthly_usd,
                today.replace(day=1).astimezone(timezone.utc),
                f"it renews on the 1st, {where}",
            ),
        )

    def _spent_since(self, since: datetime, user: str | None = None) -> float:
        if user is None:
            (spent,) = self._db.execute("SELECT TOTAL(cost_usd) FROM requests WHERE at >= ?", (_stamp(since),)).fetchone()
        else:
            query = "SELECT TOTAL(cost_usd) FROM requests WHERE user = ? AND at >= ?"
            (spent,) = self._db.execute(query, (user, _stamp(since))).fetchone()
        return float(spent)

    def _now(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)

    # --- rows ---------------------------------------------------------------------------------------

    def record(
        self,
        *,
        user: str = "",
        kernel: str,
        notebook: str | None,
        model: str,
        usage: Mapping[str, Any],
        request_id: str | None,
        status: int,
        reservation: Reservation | None = None,
    ) -> float | None:
        """Store one request's row (its final, cumulative ``usage``); returns its cost (None: no price).

        With the ``reservation`` that ``check`` gave it, the row replaces the estimate in one step.
        """
        tokens = TokenUsage.from_api(_known_counts(usage))
        spent = cost(model, tokens)
        tools = usage.get("server_tool_use")
        tools = tools if isinstance(tools, Mapping) else {}
        row = (
            _stamp(self._now()),
            _text(user),
            _text(kernel),
            None if notebook is None else _text(notebook),
            _text(model),
            tokens.input,
            tokens.output,
            tokens.cache_write,
            tokens.cache_write_1h,
            tokens.cache_read,
            _count(tools.get("web_search_requests")),
            _count(tools.get("web_fetch_requests")),
            spent,
            None if request_id is None else _text(request_id),
            int(status),
        )
        with self._lock:
            self._db.execute(f"INSERT INTO requests ({_COLUMNS}) VALUES ({', '.join('?' * 15)})", row)
            if reservation is not None:
                reservation.release()
        return spent

    def rows(self) -> list[dict[str, Any]]:
        """Every row, oldest first (for exports and tests)."""
        with self._lock:
            cursor = self._db.execute(f"SELECT {_COLUMNS} FROM requests ORDER BY id")
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, values)) for values in cursor.fetchall()]

    # --- figures ------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Today, this month, and this month by notebook and by model (costliest first); JSON-ready.

        Costs leave out the requests of models with no price (``unpriced_requests`` counts them);
        ``left_usd`` is what a request could still spend, requests in flight deducted.
        """
        now = self._now()
        day, month = self._periods(now, self.budgets)
        local = now.astimezone(self.budgets.zone)
        with self._lock:
            pending = self._pending(None)
            return {
                "timezone": self.budgets.timezone,
                "today": {"date": local.date().isoformat(), **self._with_budget(day, pending)},
                "month": {"month": local.strftime("%Y-%m"), **self._with_budget(month, pending)},
                "by_notebook": self._grouped("notebook", month.since),
                "by_model": self._grouped("model", month.since),
            }

    def by_user(self) -> list[dict[str, Any]]:
        """Each user's spending today and this month (the month's costliest first); JSON-ready."""
        day, month = self._periods(self._now(), self.budgets)
        with self._lock:
            today = {row["user"]: row for row in self._grouped("user", day.since)}
            return [
                {
                    "user": row["user"],
                    "month": _without(row, "user"),
                    "today": _without(today.get(row["user"]) or _totals((0,) * 8), "user"),
                }
                for row in self._grouped("user", month.since)
            ]

    def by_day(self, days: int = 30) -> list[dict[str, Any]]:
        """The last ``days`` days (today included, in the budgets' time zone), oldest first: each
        day's cost and requests, in all and by user. Empty days are there too, for a chart."""
        zone = self.budgets.zone
        today = self._now().astimezone(zone).date()
        first = today - timedelta(days=days - 1)
        since = datetime.combine(first, midnight(), tzinfo=zone)
        dates = [first + timedelta(days=n) for n in range(days)]
        costs: dict[date, dict[str, float]] = {day: {} for day in dates}
        requests: dict[date, int] = dict.fromkeys(dates, 0)
        query = (
            "SELECT substr(at, 1, 13), user, TOTAL(cost_usd), COUNT(*) FROM requests WHERE at >= ? "
            "GROUP BY substr(at, 1, 13), user"
        )  # by UTC hour, which every time zone's day is made of (whole or half-hour zones alike)
        with self._lock:
            hours = self._db.execute(query, (_stamp(since),)).fetchall()
        for hour, user, spent, count in hours:
            day = datetime.fromisoformat(hour + ":00:00+00:00").astimezone(zone).date()
            if day in costs:
                costs[day][user] = costs[day].get(user, 0.0) + spent
                requests[day] += count
        return [
            {
                "date": day.isoformat(),
                "cost_usd": round(sum(costs[day].values()), 6),
                "requests": requests[day],
                "by_user": {user: round(spent, 6) for user, spent in costs[day].items()},
            }
            for day in dates
        ]

    def spent(self, user: str, budgets: Budgets) -> dict[str, float]:
        """What ``user`` spent today and this month, by the days and months of ``budgets``."""
        day, month = self._periods(self._now(), budgets)
        with self._lock:
            return {
                "today_usd": round(self._spent_since(day.since, user), 6),
                "month_usd": round(self._spent_since(month.since, user), 6),
            }

    def _with_budget(self, period: _Period, pending: float) -> dict[str, Any]:
        (values,) = self._db.execute(f"SELECT {_TOTALS} FROM requests WHERE at >= ?", (_stamp(period.since),))
        totals = _totals(values)
        ceiling = period.ceiling_usd
        left = None if ceiling is None else round(max(ceiling - totals["cost_usd"] - pending, 0.0), 6)
        return {**totals, "budget_usd": ceiling, "left_usd": left}

    def _grouped(self, column: str, since: datetime) -> list[dict[str, Any]]:
        query = (
            f"SELECT {column}, {_TOTALS} FROM requests WHERE at >= ? "
            f"GROUP BY {column} ORDER BY TOTAL(cost_usd) DESC, COUNT(*) DESC"
        )
        return [{column: values[0], **_totals(values[1:])} for values in self._db.execute(query, (_stamp(since),))]


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # private from the start; WAL files follow its mode
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 5000")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(_SCHEMA)
    if "user" not in {column[1] for column in db.execute("PRAGMA table_info(requests)")}:  # a ledger of version 1
        db.execute("ALTER TABLE requests ADD COLUMN user TEXT NOT NULL DEFAULT ''")
    db.execute(_USER_INDEX)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return db


def _without(row: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != key}


def _totals(values: tuple[Any, ...]) -> dict[str, Any]:
    requests, errors, spent, unpriced, input_tokens, output_tokens, cache_write, cache_read = values
    return {
        "requests": requests,
        "errors": errors,
        "cost_usd": round(spent, 6),
        "unpriced_requests": unpriced,
        "tokens": {
            "input": int(input_tokens),
            "output": int(output_tokens),
            "cache_write": int(cache_write),
            "cache_read": int(cache_read),
        },
    }


def _stamp(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601, so that text order is time order."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _text(value: str) -> str:
    return scrub(str(value))[:TEXT_LIMIT]


def _count(value: Any) -> int:
    """A token count, or 0 for anything that isn't one (so no other value can reach a row)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _known_counts(usage: Mapping[str, Any]) -> dict[str, Any]:
    """The counts of a usage that pricing reads, and nothing else."""
    breakdown = usage.get("cache_creation")
    breakdown = breakdown if isinstance(breakdown, Mapping) else {}
    tools = usage.get("server_tool_use")
    tools = tools if isinstance(tools, Mapping) else {}
    return {
        "input_tokens": _count(usage.get("input_tokens")),
        "output_tokens": _count(usage.get("output_tokens")),
        "cache_creation_input_tokens": _count(usage.get("cache_creation_input_tokens")),
        "cache_read_input_tokens": _count(usage.get("cache_read_input_tokens")),
        "cache_creation": {"ephemeral_1h_input_tokens": _count(breakdown.get("ephemeral_1h_input_tokens"))},
        "server_tool_use": {"web_search_requests": _count(tools.get("web_search_requests"))},
    }
