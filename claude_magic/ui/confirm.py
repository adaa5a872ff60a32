"""Asking the user before spending more than they said they would without being asked.

A prompt (``input()``), under the cell in a notebook and in the terminal, not a button: a widget's
click can't reach the kernel while the cell that waits for it runs (ipykernel handles one shell
message at a time, and libraries that get round it patch the kernel's internals and fail in VS
Code), and a question or a job must not go on without its answer when Run All reaches the next
cells. Where no one can answer (nbclient, papermill: the request allows no stdin), nothing is
sent and the line says how to send anyway.
"""

from __future__ import annotations

from ..core.pricing import format_cost
from ..core.spending import Refused


def confirm_spending(what: str, threshold: float, send_anyway: str = "add --yes") -> None:
    """Ask whether to go on with ``what`` ("this question could cost up to $1.20 …"), which is
    above ``threshold`` USD; raise :class:`~claude_magic.core.spending.Refused` unless the user
    says yes (``send_anyway``: how to go on where no one can be asked)."""
    from IPython.core.error import StdinNotImplementedError

    why = f"{what}, more than confirm_above_usd ({format_cost(threshold)})"
    try:
        reply = input(f"claude: {why}. Send it? [y/N] ")
    except StdinNotImplementedError:
        raise Refused(f"{why}, and this frontend can't ask: nothing was sent ({send_anyway} to send it)") from None
    except (EOFError, KeyboardInterrupt):
        reply = ""
    if reply.strip().lower() not in ("y", "yes"):
        raise Refused("not sent: declined")
