"""The Hub service's ledger, for people: ``usage`` as JSON and the service's own page.

Both are behind the Hub's login (``HubOAuth``: a browser is sent through the Hub's OAuth; a script
sends a token). A Hub admin, or a member of ``c.ClaudeProxy.admin_groups``, sees everything: today
and this month, by user, by model, by day, and the policies; anyone else with access to the service
sees their own spending and policy. The page draws the last 30 days as an SVG bar chart, each day's
bar split by user; it is made on the server, every name in it escaped (a user or model name is
data), with no script.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

from jupyterhub.services.auth import HubOAuthenticated, UserNotAllowed
from tornado import web

from ..server.ledger import Budgets, Ledger
from ..server.ledger import dollars as ledger_dollars
from ..server.policy import GroupPolicies, Policy

CHART_DAYS = 30
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd")
"""One colour a user, in turn (the tenth user shares the first's)."""


class _LedgerBase(HubOAuthenticated, web.RequestHandler):  # type: ignore[misc]
    def initialize(self, hub_auth: Any, ledger: Ledger, policies: GroupPolicies, admin_groups: frozenset[str]) -> None:
        self.hub_auth = hub_auth
        self.ledger, self.policies, self.admin_groups = ledger, policies, admin_groups

    async def prepare(self) -> None:
        model = await self.hub_auth.get_user(self, sync=False)
        try:
            self.current_user = self.check_hub_user(model) if model else None
        except UserNotAllowed:
            raise web.HTTPError(403, "this Hub account may not use the claude-magic service") from None

    def is_admin(self, user: Mapping[str, Any]) -> bool:
        return bool(user.get("admin")) or bool(self.admin_groups & set(user.get("groups") or ()))

    def figures(self, user: Mapping[str, Any]) -> dict[str, Any]:
        if self.is_admin(user):
            return everything(self.ledger, self.policies)
        return own(self.ledger, str(user["name"]), self.policies.for_user(user.get("groups") or ()))


class LedgerHandler(_LedgerBase):
    """``GET {prefix}usage``: JSON."""

    async def get(self) -> None:
        if self.current_user is None:
            raise web.HTTPError(403)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(self.figures(self.current_user)))


class LedgerPageHandler(_LedgerBase):
    """``GET {prefix}``: the page."""

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        figures = self.figures(user)
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.finish(page(figures) if "by_user" in figures else own_page(figures))


# --- the figures ------------------------------------------------------------------------------------


def everything(ledger: Ledger, policies: GroupPolicies) -> dict[str, Any]:
    summary = ledger.summary()
    return {
        "timezone": summary["timezone"],
        "today": summary["today"],
        "month": summary["month"],
        "by_user": ledger.by_user(),
        "by_model": summary["by_model"],
        "by_day": ledger.by_day(CHART_DAYS),
        "policies": {
            "default": policy_json(policies.default),
            "groups": {name: policy_json(p) for name, p in policies.groups.items()},
        },
    }


def own(ledger: Ledger, user: str, policy: Policy) -> dict[str, Any]:
    budgets = policy.budgets or Budgets()
    spent = ledger.spent(user, budgets)
    left = {
        "today_usd": None if budgets.daily_usd is None else round(max(budgets.daily_usd - spent["today_usd"], 0.0), 6),
        "month_usd": None
        if budgets.monthly_usd is None
        else round(max(budgets.monthly_usd - spent["month_usd"], 0.0), 6),
    }
    return {"user": user, "policy": policy_json(policy), "spent": spent, "left": left}


def policy_json(policy: Policy) -> dict[str, Any]:
    budgets = policy.budgets or Budgets()
    return {
        "source": policy.source,
        "daily_usd": budgets.daily_usd,
        "monthly_usd": budgets.monthly_usd,
        "models": None if policy.models is None else list(policy.models),
    }


# --- the page ---------------------------------------------------------------------------------------

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; } th, td { padding: .25em .8em; text-align: left; border-bottom: 1px solid #ddd; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; gap: 1em; } .card { border: 1px solid #ddd; border-radius: 6px; padding: .6em 1em; }
.legend span { display: inline-block; margin-right: 1em; } .legend i { display: inline-block; width: .8em; height: .8em; margin-right: .3em; }
"""


def dollars(amount: float | None) -> str:
    return "no limit" if amount is None else ledger_dollars(amount)


def _document(title: str, body: str) -> str:
    return f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"


def _table(headings: list[str], rows: list[list[str]], numeric: range = range(1, 99)) -> str:
    """A table of already-escaped cells; the ``numeric`` columns are right-aligned."""

    def cells(values: list[str], tag: str) -> str:
        return "".join(
            f"<{tag}{' class=n' if i in numeric else ''}>{value}</{tag}>" for i, value in enumerate(values)
        )

    body = (
        "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
        or f"<tr><td colspan={len(headings)}>nothing yet</td></tr>"
    )
    return f"<table><thead><tr>{cells(headings, 'th')}</tr></thead><tbody>{body}</tbody></table>"


def page(figures: Mapping[str, Any]) -> str:
    """The admin's page: totals, the chart, by user, by model, the policies."""
    today, month = figures["today"], figures["month"]
    cards = (
        f"<div class=cards><div class=card>Today ({escape(today['date'])})<br><b>{dollars(today['cost_usd'])}</b> in {today['requests']:,} requests</div>"
        f"<div class=card>This month ({escape(month['month'])})<br><b>{dollars(month['cost_usd'])}</b> in {month['requests']:,} requests</div></div>"
    )
    users = [
        [
            escape(row["user"] or "(this server)"),
            dollars(row["today"]["cost_usd"]),
            dollars(row["month"]["cost_usd"]),
            f"{row['month']['requests']:,}",
        ]
        for row in figures["by_user"]
    ]
    models = [
        [
            escape(row["model"]),
            dollars(row["cost_usd"]),
            f"{row['requests']:,}",
            f"{row['tokens']['input']:,}",
            f"{row['tokens']['output']:,}",
        ]
        for row in figures["by_model"]
    ]
    days = [
        [escape(day["date"]), dollars(day["cost_usd"]), f"{day['requests']:,}"]
        for day in reversed(figures["by_day"])
        if day["requests"]
    ]
    policies = figures["policies"]
    policy_rows = [_policy_row("default", policies["default"])] + [
        _policy_row(name, p) for name, p in sorted(policies["groups"].items())
    ]
    body = (
        f"<h1>Claude on this Hub</h1>{cards}"
        f"<h2>The last {len(figures['by_day'])} days (times in {escape(figures['timezone'])})</h2>{chart(figures['by_day'])}"
        f"<h2>By user, this month</h2>{_table(['User', 'Today', 'This month', 'Requests'], users)}"
        f"<h2>By model, this month</h2>{_table(['Model', 'Cost', 'Requests', 'Input tokens', 'Output tokens'], models)}"
        f"<h2>By day</h2><details><summary>{len(days)} {'day' if len(days) == 1 else 'days'} with requests</summary>{_table(['Day', 'Cost', 'Requests'], days)}</details>"
        f"<h2>Policies</h2>{_table(['Who', 'Daily', 'Monthly', 'Models'], policy_rows, range(1, 3))}"
    )
    return _document("Claude on this Hub", body)


def _policy_row(name: str, policy: Mapping[str, Any]) -> list[str]:
    models = policy["models"]
    return [
        escape(name),
        dollars(policy["daily_usd"]),
        dollars(policy["monthly_usd"]),
        escape(", ".join(models)) if models is not None else "any",
    ]


def own_page(figures: Mapping[str, Any]) -> str:
    """A user's page: what they spent, what is left, what they may use."""
    policy, spent, left = figures["policy"], figures["spent"], figures["left"]
    models = ", ".join(policy["models"]) if policy["models"] is not None else "any model"
    rows = [
        [
            "Today",
            dollars(spent["today_usd"]),
            dollars(policy["daily_usd"]),
            dollars(left["today_usd"]) if left["today_usd"] is not None else "no limit",
        ],
        [
            "This month",
            dollars(spent["month_usd"]),
            dollars(policy["monthly_usd"]),
            dollars(left["month_usd"]) if left["month_usd"] is not None else "no limit",
        ],
    ]
    body = (
        f"<h1>Claude for {escape(figures['user'])}</h1>"
        f"{_table(['', 'Spent', 'Budget', 'Left'], rows)}"
        f"<p>Models: {escape(models)} ({escape(policy['source'])}).</p>"
    )
    return _document(f"Claude for {figures['user']}", body)


def chart(days: list[Mapping[str, Any]], width: int = 720, height: int = 180) -> str:
    """Each day's spending as a bar, split by user, with a legend; an SVG with a title for every piece."""
    users = sorted({user for day in days for user in day["by_user"]})
    colour = {user: PALETTE[i % len(PALETTE)] for i, user in enumerate(users)}
    top = max((day["cost_usd"] for day in days), default=0.0) or 1.0
    slot = width / max(len(days), 1)
    pieces = []
    for i, day in enumerate(days):
        y = float(height)
        for user, spent in sorted(day["by_user"].items()):
            tall = spent / top * (height - 10)
            y -= tall
            label = escape(f"{day['date']}: {user or '(this server)'} {dollars(spent)}")
            pieces.append(
                f"<rect x='{i * slot + 1:.1f}' y='{y:.1f}' width='{slot - 2:.1f}' height='{tall:.1f}' fill='{colour[user]}'><title>{label}</title></rect>"
            )
        if i % 5 == 0 or i == len(days) - 1:  # the last label ends where its bar does
            x, anchor = ((i + 1) * slot, "end") if i == len(days) - 1 else (i * slot, "start")
            pieces.append(f"<text x='{x:.1f}' y='{height + 14}' font-size='10' text-anchor='{anchor}'>{escape(day['date'][5:])}</text>")
    pieces.append(f"<text x='0' y='10' font-size='10'>{escape(dollars(top))}</text>")
    legend = "".join(
        f"<span><i style='background:{colour[user]}'></i>{escape(user or '(this server)')}</span>" for user in users
    )
    return (
        f"<svg role='img' aria-label='spending per day, by user' width='{width}' height='{height + 20}' "
        f"viewBox='0 0 {width} {height + 20}' xmlns='http://www.w3.org/2000/svg'>{''.join(pieces)}</svg><p class=legend>{legend}</p>"
    )
