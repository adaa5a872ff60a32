"""SSEDecoder: framing of raw bytes into events, however the bytes are cut or terminated."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest

from claude_magic.api.sse import ServerSentEvent, SSEDecoder

Events = list[ServerSentEvent]

SAMPLE = (
    b": keepalive\n"
    b"event: message_start\n"
    b'data: {"type":"message_start"}\n'
    b"\n"
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","delta":{"text":"h\xc3\xa9llo \xf0\x9f\x8e\x89"}}\n'
    b"\n"
    b"data: first line\n"
    b"data: second line\n"
    b"\n"
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n'
    b"\n"
)
SAMPLE_EVENTS = [
    ServerSentEvent("message_start", '{"type":"message_start"}'),
    ServerSentEvent("content_block_delta", '{"type":"content_block_delta","delta":{"text":"héllo 🎉"}}'),
    ServerSentEvent(None, "first line\nsecond line"),
    ServerSentEvent("message_stop", '{"type":"message_stop"}'),
]
UNTERMINATED_FIXTURES = ("test_messages__basic_response", "test_messages__tool_use_response")


# --- helpers ---------------------------------------------------------------------------------


def decode(chunks: Iterable[bytes]) -> tuple[Events, Events]:
    """The events ``feed`` returned, and those ``flush`` returned at the end."""
    decoder = SSEDecoder()
    fed: Events = []
    for chunk in chunks:
        fed += decoder.feed(chunk)
    return fed, decoder.flush()


def decode_all(chunks: Iterable[bytes]) -> Events:
    fed, flushed = decode(chunks)
    return fed + flushed


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_chunks(data: bytes, seed: int, max_size: int = 40) -> list[bytes]:
    rng = random.Random(seed)
    chunks, start = [], 0
    while start < len(data):
        size = rng.randint(1, max_size)
        chunks.append(data[start : start + size])
        start += size
    return chunks


def lf(data: bytes) -> bytes:
    return data


def crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def cr(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r")


ENDINGS: Sequence[Callable[[bytes], bytes]] = (lf, crlf, cr)
ending_ids = [f.__name__ for f in ENDINGS]


# --- line endings and chunking ---------------------------------------------------------------


@pytest.mark.parametrize("ending", ENDINGS, ids=ending_ids)
def test_line_endings_whole(ending: Callable[[bytes], bytes]) -> None:
    assert decode_all([ending(SAMPLE)]) == SAMPLE_EVENTS


@pytest.mark.parametrize("ending", ENDINGS, ids=ending_ids)
def test_byte_at_a_time(ending: Callable[[bytes], bytes]) -> None:
    assert decode_all(bytewise(ending(SAMPLE))) == SAMPLE_EVENTS


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("ending", ENDINGS, ids=ending_ids)
def test_random_chunk_sizes(ending: Callable[[bytes], bytes], seed: int) -> None:
    assert decode_all(random_chunks(ending(SAMPLE), seed, max_size=9)) == SAMPLE_EVENTS


def test_mixed_line_endings_in_one_stream() -> None:
    stream = b"event: a\r\ndata: 1\r\rdata: 2\n\r\ndata: 3\r\n\n"
    expected = [ServerSentEvent("a", "1"), ServerSentEvent(None, "2"), ServerSentEvent(None, "3")]
    assert decode_all([stream]) == expected
    assert decode_all(bytewise(stream)) == expected


def test_cr_ending_one_chunk_and_lf_starting_the_next_are_one_line_break() -> None:
    # Were "\r" + "\n" counted as two line breaks, "1" and "2" would be two events.
    assert decode([b"data: 1\r", b"\ndata: 2\r", b"\n\r", b"\n"]) == ([ServerSentEvent(None, "1\n2")], [])


def test_cr_at_chunk_end_followed_by_a_new_line_of_text() -> None:
    assert decode_all([b"data: 1\r", b"data: 2\r", b"\r"]) == [ServerSentEvent(None, "1\n2")]


def test_empty_chunk_between_cr_and_lf_changes_nothing() -> None:
    assert decode_all([b"data: 1\r", b"", b"\ndata: 2\n\n"]) == [ServerSentEvent(None, "1\n2")]


@pytest.mark.parametrize("ending", [crlf, cr], ids=["crlf", "cr"])
def test_event_ending_in_cr_is_delivered_without_waiting_for_the_next_chunk(ending: Callable[[bytes], bytes]) -> None:
    decoder = SSEDecoder()
    # CRLF: the chunk is cut between the CR and the LF of the blank line.
    chunk = ending(b"data: x\n\n")
    chunk = chunk[:-1] if ending is crlf else chunk
    assert decoder.feed(chunk) == [ServerSentEvent(None, "x")]


# --- UTF-8 -----------------------------------------------------------------------------------


def test_multibyte_character_split_at_every_position() -> None:
    data = "data: héllo 🎉\n\n".encode()
    for cut in range(1, len(data)):
        assert decode_all([data[:cut], data[cut:]]) == [ServerSentEvent(None, "héllo 🎉")], cut


def test_multibyte_characters_byte_at_a_time() -> None:
    assert decode_all(bytewise("data: héllo 🎉\n\n".encode())) == [ServerSentEvent(None, "héllo 🎉")]


# --- field rules -----------------------------------------------------------------------------


def test_comments_are_ignored() -> None:
    assert decode_all([b": keepalive\n\n"]) == []
    assert decode_all([b": keepalive\ndata: x\n: another\n\n"]) == [ServerSentEvent(None, "x")]


def test_multiline_data_is_joined_with_newlines() -> None:
    assert decode_all([b"data: a\ndata: b\n\n"]) == [ServerSentEvent(None, "a\nb")]
    assert decode_all([b"data: a\ndata:\ndata: b\n\n"]) == [ServerSentEvent(None, "a\n\nb")]


@pytest.mark.parametrize(
    ("line", "value"),
    [(b"data:  x", " x"), (b"data: x", "x"), (b"data:x", "x"), (b"data: x ", "x "), (b"data", "")],
)
def test_one_leading_space_is_stripped_only(line: bytes, value: str) -> None:
    assert decode_all([line + b"\n\n"]) == [ServerSentEvent(None, value)]


def test_unknown_fields_and_lines_without_colon_are_ignored() -> None:
    stream = b"foo: bar\nevent: x\nbaz\nDATA: upper\ndata: kept\n\n"
    assert decode_all([stream]) == [ServerSentEvent("x", "kept")]


def test_event_name_id_and_retry() -> None:
    events = decode_all([b"event:\nid: 7\nretry: 150\ndata: a\n\nretry: soon\ndata: b\n\nid: x\0y\ndata: c\n\n"])
    assert events == [
        ServerSentEvent(None, "a", id="7", retry=150),
        ServerSentEvent(None, "b", id="7", retry=None),  # the last id is kept; a bad retry is ignored
        ServerSentEvent(None, "c", id="7", retry=None),  # an id containing NUL is ignored
    ]


def test_empty_blocks_produce_no_events() -> None:
    assert decode_all([b"\n\n\n\n\n"]) == []
    assert decode_all([b"\r\n\r\n\r\r"]) == []
    assert decode_all([b"data: x\n\n\n\n\ndata: y\n\n"]) == [ServerSentEvent(None, "x"), ServerSentEvent(None, "y")]


def test_unterminated_last_event_is_delivered_by_flush() -> None:
    assert decode([b"data: a\n\ndata: b"]) == ([ServerSentEvent(None, "a")], [ServerSentEvent(None, "b")])
    assert decode([b"event: e\ndata: b\n"]) == ([], [ServerSentEvent("e", "b")])
    assert decode([b"data: b\r"]) == ([], [ServerSentEvent(None, "b")])


def test_flush_after_complete_stream_is_empty_and_decoder_is_reusable() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\n") == [ServerSentEvent(None, "a")]
    assert decoder.flush() == []
    assert decoder.feed(b"data: b\n\n") == [ServerSentEvent(None, "b")]


# --- the recorded streams --------------------------------------------------------------------


def blocks_of(raw: bytes) -> list[dict[str, object]]:
    """A plain reading of an LF stream: its non-empty blocks' data, as JSON."""
    found = []
    for block in raw.decode().split("\n\n"):
        data = [line[5:].removeprefix(" ") for line in block.split("\n") if line.startswith("data:")]
        if data:
            found.append(json.loads("\n".join(data)))
    return found


def test_fixture_decodes_to_its_blocks(sse_fixture: Path) -> None:
    raw = sse_fixture.read_bytes()
    events = decode_all([raw])
    blocks = blocks_of(raw)
    assert len(events) == len(blocks)
    assert [e.event for e in events] == [b["type"] for b in blocks]
    assert [json.loads(e.data) for e in events] == blocks


@pytest.mark.parametrize("feeding", ["random", "bytewise"])
@pytest.mark.parametrize("ending", ENDINGS, ids=ending_ids)
def test_fixture_same_events_however_fed(sse_fixture: Path, ending: Callable[[bytes], bytes], feeding: str) -> None:
    raw = sse_fixture.read_bytes()
    expected = decode_all([raw])
    data = ending(raw)
    chunks = bytewise(data) if feeding == "bytewise" else random_chunks(data, seed=len(data), max_size=200)
    assert decode_all(chunks) == expected


def test_fixture_last_event_without_trailing_newline_comes_from_flush(sse_fixture: Path) -> None:
    raw = sse_fixture.read_bytes()
    fed, flushed = decode([raw])
    if raw.endswith(b"\n\n"):
        assert flushed == []
        assert fed[-1].event == "message_stop"
    else:
        assert [e.event for e in flushed] == ["message_stop"]
        assert json.loads(flushed[0].data) == {"type": "message_stop"}


def test_the_two_sdk_fixtures_lack_a_trailing_newline(sse_fixtures_dir: Path) -> None:
    unterminated = {
        p.stem.split("__", 1)[-1] for p in sse_fixtures_dir.glob("*.sse") if not p.read_bytes().endswith(b"\n")
    }
    assert unterminated == set(UNTERMINATED_FIXTURES)
