"""What a caller may spend and which models it may ask for: a :class:`Policy`.

On one user's server every kernel has the default policy (any model; the server's own budgets, which
the ledger holds). On a Hub each user has one, made from the policies of their groups
(:class:`GroupPolicies`): an admin gives the class a default, and a group its own ceilings and
models. A user in several groups gets the most generous of them in each respect: the highest
daily and monthly ceilings (no ceiling beats any), and every model any of them allows; an admin who
wants the stricter rule puts the user in fewer groups.

Models are named by ``fnmatch`` patterns (``claude-haiku-*``), so that a policy written today still
allows the next release of the same family.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from .ledger import Budgets


@dataclass(frozen=True)
class Policy:
    """Budgets and models for one caller; the default allows everything and adds no budget."""

    source: str = ""
    """Where it comes from, for the one line a refusal is: "group students", "the default policy"."""
    budgets: Budgets | None = None
    """The caller's own daily and monthly ceilings (None: none beyond the server's)."""
    models: tuple[str, ...] | None = None
    """Patterns of the models it may use (None: any)."""

    def allows(self, model: str) -> bool:
        return self.models is None or any(fnmatchcase(model, pattern) for pattern in self.models)

    def refusal(self, model: str, user: str) -> str:
        """The one line for a request whose model this policy does not allow."""
        allowed = ", ".join(self.models or ())
        whose = f"{self.source} ({user})" if user else self.source
        return f"{model or 'this model'} is not allowed by {whose}: it allows {allowed}; nothing was sent"

    def owner(self, user: str) -> str:
        """Whose budgets these are, for the one line a refusal is ("alice (group students)")."""
        return f"{user} ({self.source})" if user and self.source else user


@dataclass(frozen=True)
class GroupPolicies:
    """The default policy and the groups' own (see the module's docstring)."""

    default: Policy = Policy(source="the default policy")
    groups: Mapping[str, Policy] = field(default_factory=dict)

    @classmethod
    def from_config(
        cls, default: Mapping[str, Any], groups: Mapping[str, Mapping[str, Any]], timezone: str = "UTC"
    ) -> GroupPolicies:
        """From ``{"daily_usd": 1, "monthly_usd": 10, "models": ["claude-haiku-*"]}`` for the default
        and for each group (``c.ClaudeProxy.user_policy`` and ``c.ClaudeProxy.group_policies``); what
        a group leaves out, it takes from the default."""
        return cls(
            default=_policy("the default policy", default, timezone),
            groups={
                name: _policy(f"group {name}", {**default, **settings}, timezone) for name, settings in groups.items()
            },
        )

    def for_user(self, groups: Iterable[str]) -> Policy:
        """The policy of a user in ``groups``: the most generous of their groups', else the default."""
        chosen = [(name, self.groups[name]) for name in sorted(set(groups)) if name in self.groups]
        if not chosen:
            return self.default
        if len(chosen) == 1:
            return chosen[0][1]
        policies = [policy for _, policy in chosen]
        source = "groups " + ", ".join(name for name, _ in chosen)
        models = (
            None
            if any(p.models is None for p in policies)
            else tuple(dict.fromkeys(m for p in policies for m in p.models or ()))
        )
        budgets = [p.budgets or Budgets() for p in policies]
        timezone = budgets[0].timezone
        return Policy(
            source,
            Budgets(_most(b.daily_usd for b in budgets), _most(b.monthly_usd for b in budgets), timezone),
            models,
        )


def _most(ceilings: Iterable[float | None]) -> float | None:
    """The most generous ceiling: none at all beats any."""
    values = list(ceilings)
    return None if any(value is None for value in values) else max(value for value in values if value is not None)


def _policy(source: str, settings: Mapping[str, Any], timezone: str) -> Policy:
    unknown = set(settings) - {"daily_usd", "monthly_usd", "models"}
    if unknown:
        raise ValueError(
            f"{source}: unknown setting(s) {', '.join(sorted(unknown))} (a policy has daily_usd, monthly_usd and models)"
        )
    models = settings.get("models")
    if models is not None and (isinstance(models, str) or not all(isinstance(m, str) for m in models)):
        raise ValueError(f"{source}: models is a list of model names or patterns, e.g. ['claude-haiku-*']")
    return Policy(
        source,
        Budgets(settings.get("daily_usd"), settings.get("monthly_usd"), timezone),
        None if models is None else tuple(models),
    )
