"""Policies by group and the ledger's page: what a user may use and spend, and what an admin reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from claude_magic.server.ledger import Budgets, Ledger
from claude_magic.server.policy import GroupPolicies, Policy

pytest.importorskip("jupyterhub", reason="the Hub service's page needs jupyterhub (make test installs it)")
from claude_magic.hub.ledger_page import everything, own, own_page, page  # noqa: E402

POLICIES = GroupPolicies.from_config(
    {"daily_usd": 1.0, "monthly_usd": 10.0},
    {
        "students": {"daily_usd": 0.5, "models": ["claude-haiku-*"]},
        "staff": {"daily_usd": None, "models": ["claude-sonnet-5-5"]},
    },
)


def test_a_groups_policy_takes_what_it_leaves_out_from_the_default() -> None:
    students = POLICIES.for_user(["students"])
    assert students.source == "group students"
    assert students.budgets == Budgets(0.5, 10.0)
    assert students.allows("claude-haiku-5-5") and not students.allows("claude-sonnet-5-5")
    assert POLICIES.for_user(["chess-club"]) == POLICIES.default
    assert POLICIES.default.allows("claude-opus-5-5")


def test_a_user_in_two_groups_gets_the_most_generous_of_each() -> None:
    both = POLICIES.for_user(["students", "staff"])
    assert both.source == "groups staff, students"
    assert both.budgets == Budgets(None, 10.0)  # staff has no daily ceiling
    assert both.allows("claude-haiku-5-5") and both.allows("claude-sonnet-5-5") and not both.allows("claude-opus-5-5")


def test_a_refused_model_gets_one_line_naming_the_policy() -> None:
    line = POLICIES.for_user(["students"]).refusal("claude-opus-5-5", "bob")
    assert line == "claude-opus-5-5 is not allowed by group students (bob): it allows claude-haiku-*; nothing was sent"
    assert Policy().owner("bob") == "bob" and POLICIES.for_user(["students"]).owner("bob") == "bob (group students)"


def test_a_policy_with_a_mistake_says_which_and_why() -> None:
    with pytest.raises(
        ValueError, match="group x: unknown setting\\(s\\) daily \\(a policy has daily_usd, monthly_usd and models\\)"
    ):
        GroupPolicies.from_config({}, {"x": {"daily": 1}})
    with pytest.raises(ValueError, match="models is a list"):
        GroupPolicies.from_config({"models": "claude-haiku-*"}, {})


def test_the_admins_page_escapes_every_name_and_draws_30_days(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    evil = "<img src=x onerror=alert(1)>"
    ledger.record(
        user=evil,
        kernel="k",
        notebook=None,
        model=f"m{evil}",
        usage={"input_tokens": 1000},
        request_id=None,
        status=200,
    )
    ledger.record(
        user="bob",
        kernel="k",
        notebook=None,
        model="claude-sonnet-5-5",
        usage={"input_tokens": 50_000},
        request_id=None,
        status=200,
    )
    html = page(everything(ledger, POLICIES))
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in html
    assert html.count("<rect") == 2  # today's bar, split by its two users
    assert len(re.findall(r"<text[^>]*>\d\d-\d\d</text>", html)) == 7  # every fifth day labelled, and the last
    assert "$0.10" in html  # bob's 50,000 Sonnet input tokens
    mine = own_page(own(ledger, "bob", POLICIES.for_user(["students"])))
    assert "Claude for bob" in mine and "$0.40" in mine and "claude-haiku-*" in mine  # $0.50 a day, $0.10 spent
    ledger.close()
