"""One scrub for every text kept or shown: the credentials in use (as they are, and as JSON
escapes them) and anything shaped like a key, taken out before a preview is cut."""

from __future__ import annotations

import json

from claude_magic.api.redaction import dumps, remember, scrub
from claude_magic.core.conversation import Exchange
from claude_magic.magics.reports import preview

TOKEN = 'tok-\\0123456789"abcdefghij'
"""A credential not shaped like an Anthropic key, with characters JSON escapes."""


def test_the_credentials_in_use_are_scrubbed_from_text_and_json() -> None:
    remember([TOKEN])
    assert scrub(f"token {TOKEN}, key sk-ant-api03-0123456789") == "token ***, key sk-ant-***"
    assert TOKEN[4:12] not in dumps({"echo": f"you sent {TOKEN}"})
    assert json.loads(dumps({"echo": f"you sent {TOKEN}"})) == {"echo": "you sent ***"}


def test_a_preview_is_scrubbed_before_it_is_cut() -> None:
    remember([TOKEN])
    question = "Please check whether this token is still valid: " + TOKEN
    shown = preview(Exchange([{"type": "text", "text": question}], [{"type": "text", "text": "ok"}]))
    assert shown == "Please check whether this token is still valid: ***"
    assert "tok-" not in preview(Exchange([{"type": "text", "text": "x" * 55 + TOKEN}], []))
