"""When to retry a request and how long to wait first, as the official SDK does.

Only obtaining a response is retried: once an answer has started to stream, nothing is.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from time import time

RETRYABLE_STATUSES = frozenset({408, 409, 429})
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0


def should_retry(status_code: int, headers: Mapping[str, str]) -> bool:
    """``x-should-retry`` decides when present; then 408, 409, 429 and every 5xx (529 too)."""
    verdict = headers.get("x-should-retry")
    if verdict == "true":
        return True
    if verdict == "false":
        return False
    return status_code in RETRYABLE_STATUSES or status_code >= 500


def server_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, then ``retry-after``
    as seconds or as an HTTP date."""
    if (value := headers.get("retry-after-ms")) is not None:
        try:
            return max(float(value) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time(), 0.0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def backoff(retries_taken: int, rng: random.Random | None = None) -> float:
    """Exponential backoff, 0.5 s doubling up to 8 s, shortened by up to 25 % of jitter."""
    base = min(INITIAL_BACKOFF * 2**retries_taken, MAX_BACKOFF)
    return base * (1 - 0.25 * (rng or random).random())


def retry_delay(headers: Mapping[str, str], retries_taken: int) -> float:
    """How long to wait before the next attempt: the server's word, else backoff."""
    asked = server_retry_after(headers)
    return asked if asked is not None and asked > 0 else backoff(retries_taken)
