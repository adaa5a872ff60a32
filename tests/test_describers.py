"""The attachment registry is open: a describer registered from outside the package (here, this
test module) is consulted before the built-in ones, the catch-all included, and in a kernel ``-a``
uses it."""

from __future__ import annotations

import pytest
from kernel_harness import Kernel

import claude_magic.attach as attach_package
from claude_magic.attach import Attachment, attach, bounded, describes
from claude_magic.testing import StandIn

KEY = "sk-ant-describers-test-key-3c2b1a"


class Portfolio:
    def __init__(self, holdings: dict[str, float]) -> None:
        self.holdings = holdings


@describes(Portfolio)
def _portfolio(label: str, portfolio: Portfolio, budget: int) -> Attachment:
    lines = [f"{name}: {weight:.0%}" for name, weight in portfolio.holdings.items()]
    return Attachment(label, "portfolio", text=bounded("\n".join(lines), budget))


class Ledger(dict):  # type: ignore[type-arg]
    """A dict: the built-in container describer would take it, but ours comes first."""


@describes(lambda obj: isinstance(obj, Ledger))
def _ledger(label: str, ledger: Ledger, budget: int) -> Attachment:
    return Attachment(label, "ledger", text=f"{len(ledger)} entries")


def test_a_type_registered_here_is_described_by_its_own_describer() -> None:
    attached = attach("`p`", Portfolio({"bonds": 0.4, "stocks": 0.6}))
    assert (attached.kind, attached.text) == ("portfolio", "bonds: 40%\nstocks: 60%")
    assert attached.blocks() == [{"type": "text", "text": "Attached `p` (portfolio):\nbonds: 40%\nstocks: 60%"}]


def test_a_registered_describer_comes_before_the_built_in_ones() -> None:
    assert attach("`l`", Ledger(a=1, b=2)).kind == "ledger"
    assert attach("`d`", {"a": 1}).kind == "dict of 1 items"  # plain dicts keep the built-in one


def test_the_registry_is_public_where_the_readme_says() -> None:
    assert attach_package.describes is describes and "describes" in attach_package.__all__


@pytest.mark.kernel
def test_a_describer_registered_in_a_notebook_is_what_dash_a_sends(kernel: Kernel, server: StandIn) -> None:
    setup = (
        "from claude_magic.attach import Attachment, describes\n"
        "class Sensor:\n    reading = 21.5\n"
        "@describes(Sensor)\n"
        "def _sensor(label, sensor, budget):\n    return Attachment(label, 'sensor', text=f'reads {sensor.reading} °C')\n"
        "probe = Sensor()"
    )
    assert kernel.run(setup).status == "ok"
    assert kernel.run("%claude -a probe what does it read?").error is None
    assert server.message_requests[-1].messages[-1]["content"][0]["text"] == "Attached `probe` (sensor):\nreads 21.5 °C"
