"""The answer cache: identical requests hit, anything different misses, size stays bounded."""

from __future__ import annotations

import os
import time
from pathlib import Path

from claude_magic.api.redaction import remember
from claude_magic.core.answer_cache import AnswerCache, request_key

BODY = {"model": "claude-sonnet-5-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], "stream": True}
MESSAGE = {"id": "msg_1", "model": "claude-sonnet-5-5", "content": [{"type": "text", "text": "hello"}], "usage": {"input_tokens": 3, "output_tokens": 1}}


def test_identical_requests_share_a_key_and_any_difference_changes_it() -> None:
    key = request_key(BODY, "2023-06-01", "http://a")
    assert key == request_key({**BODY, "stream": False}, "2023-06-01", "http://a/")
    assert key != request_key({**BODY, "max_tokens": 101}, "2023-06-01", "http://a")
    assert key != request_key({**BODY, "system": "terse"}, "2023-06-01", "http://a")
    assert key != request_key(BODY, "2026-10-21", "http://a")
    assert key != request_key(BODY, "2023-06-01", "http://b")


def test_put_then_get_round_trips(tmp_path: Path) -> None:
    cache = AnswerCache(tmp_path)
    assert cache.get("k") is None
    cache.put("k", MESSAGE)
    hit = cache.get("k")
    assert hit is not None and hit.message == MESSAGE and hit.saved_at <= time.time()
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]  # no temporary files left


def test_least_recently_used_answers_are_evicted_past_the_bound(tmp_path: Path) -> None:
    cache = AnswerCache(tmp_path, max_bytes=10_000)
    big = {**MESSAGE, "content": [{"type": "text", "text": "x" * 3000}]}
    for index, key in enumerate("abc"):
        cache.put(key, big)
        os.utime(tmp_path / f"{key}.json", (1000 + index, 1000 + index))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("d", big)
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == ["a", "c", "d"]
    assert sum(p.stat().st_size for p in tmp_path.glob("*.json")) <= 10_000


def test_a_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    (tmp_path / "k.json").write_text("{not json")
    assert AnswerCache(tmp_path).get("k") is None


def test_an_answer_is_kept_without_the_credentials_in_use(tmp_path: Path) -> None:
    """A server that echoes a credential: the cache keeps what the conversation's log keeps."""
    remember(['a-custom-token-with-a-"quote'])
    cache = AnswerCache(tmp_path)
    echoed = 'you sent a-custom-token-with-a-"quote and sk-ant-api03-abcdefghijkl'
    cache.put("k", {**MESSAGE, "content": [{"type": "text", "text": echoed}]})
    kept = (tmp_path / "k.json").read_text()
    assert "a-custom-token" not in kept and "abcdefghijkl" not in kept
    hit = cache.get("k")
    assert hit is not None and hit.message["content"][0]["text"] == "you sent *** and sk-ant-***"


def test_a_cache_that_cant_be_written_says_so_in_one_line_and_raises_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # the cache's folder would be inside a file: no one can write there, not even root
    notices: list[str] = []
    cache = AnswerCache(blocker / "answers", notice=notices.append)
    cache.put("k", MESSAGE)
    [notice] = notices
    assert notice.startswith("this answer was not kept in the answer cache:") and str(blocker) in notice
    assert cache.get("k") is None
