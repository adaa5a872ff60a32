"""Asking many requests at once from a cell: an event loop in a thread, drawn from the cell's.

A cell runs on the kernel's main thread, which must stay free to draw progress and to take Ctrl-C;
the requests run on an asyncio loop of their own in a daemon thread (:func:`run_while_drawing`).
``--compare`` and jobs over rows both go through it.

Ctrl-C cancels every task the work started (and any it starts afterwards), then waits a moment for
them to record what arrived. Whether the work ended is told by an event it sets itself, never by
``Thread.join``/``is_alive``: a Ctrl-C that lands inside ``Thread.join`` can leave the thread marked
as stopped while it still runs (CPython's handling of bpo-45274), and the loop would then be closed
under it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]
"""Start a task that Ctrl-C cancels (the work's own ``ensure_future``)."""


def run_while_drawing(
    work: Callable[[Spawn], Coroutine[Any, Any, None]], draw: Callable[[], None], *, poll: float, grace: float, name: str
) -> bool:
    """Run ``work(spawn)`` on a new event loop in a daemon thread, calling ``draw`` every ``poll``
    seconds meanwhile and once at the end. True when the work ended by itself; False when Ctrl-C
    stopped it (its tasks cancelled, ``grace`` seconds given them to end)."""
    loop = asyncio.new_event_loop()
    tasks: list[asyncio.Task[None]] = []
    stopping = False
    ended = threading.Event()

    def spawn(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = loop.create_task(coroutine)
        tasks.append(task)
        if stopping:
            task.cancel()
        return task

    def stop() -> None:  # on the loop's thread, so no task is spawned unseen meanwhile
        nonlocal stopping
        stopping = True
        for task in tasks:
            task.cancel()

    def run() -> None:
        try:
            loop.run_until_complete(work(spawn))
        finally:
            ended.set()

    threading.Thread(target=run, name=name, daemon=True).start()
    try:
        while not ended.wait(poll):
            draw()
    except KeyboardInterrupt:
        loop.call_soon_threadsafe(stop)
        ended.wait(grace)
        return False
    finally:
        draw()
        if ended.is_set():
            loop.close()
    return True
