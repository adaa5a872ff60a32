"""The form an answer must take: schemas as the API takes them, refused where it can't, and
answers checked against them (pydantic models, TypedDicts and JSON schemas alike)."""

from __future__ import annotations

from datetime import date
from typing import Literal

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from claude_magic.core.schemas import AnswerMismatch, SchemaError, answer_schema


class Sentiment(BaseModel):
    sentiment: Literal["positive", "negative", "mixed"]
    stars: int = Field(ge=1, le=5, description="How many stars")
    when: date | None = None


class Pair(TypedDict):
    left: str
    right: int


def test_a_pydantic_model_is_sent_in_the_apis_subset_and_checked_in_full() -> None:
    schema = answer_schema(Sentiment)
    assert schema.fields == ("sentiment", "stars", "when")
    stars = schema.for_api["properties"]["stars"]
    assert stars["type"] == "integer" and "minimum" not in stars and "maximum" not in stars
    assert stars["description"] == "How many stars\n\n{maximum: 5, minimum: 1}"  # the model reads what the API can't enforce
    assert schema.for_api["additionalProperties"] is False
    assert schema.row({"sentiment": "mixed", "stars": 4}) == {"sentiment": "mixed", "stars": 4, "when": None}
    with pytest.raises(AnswerMismatch, match="stars: Input should be less than or equal to 5"):
        schema.row({"sentiment": "mixed", "stars": 9})  # enforced here, though not by the API


def test_a_typeddict_and_a_json_schema_check_answers_too() -> None:
    pair = answer_schema(Pair)
    assert pair.fields == ("left", "right") and pair.row({"left": "a", "right": "2"}) == {"left": "a", "right": 2}
    given = {
        "type": "object",
        "properties": {"label": {"enum": ["a", "b"]}, "score": {"type": "number", "maximum": 1}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["label", "score"],
    }
    schema = answer_schema(given)
    assert schema.for_api["properties"]["score"] == {"type": "number", "description": "{maximum: 1}"}
    assert schema.row({"label": "b", "score": 0.5}) == {"label": "b", "score": 0.5, "tags": None}
    with pytest.raises(AnswerMismatch, match=r"label: Input should be 'a' or 'b' \(and 1 more\)"):
        schema.row({"label": "c", "score": 3})


class Tree(BaseModel):
    name: str
    children: list[Tree]


class Loose(BaseModel):
    counts: dict[str, int]


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        pytest.param(Tree, "refers to itself", id="recursive"),
        pytest.param(Loose, "the field 'counts' is an object with free-form keys", id="dict"),
        pytest.param({"type": "array", "items": {"type": "string"}}, "top level must be an object", id="array"),
        pytest.param({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}, "outside itself", id="external"),
        pytest.param({"type": "object", "properties": {"a": {"minimum": 3}}}, "the field 'a' has no type", id="untyped"),
        pytest.param(42, "schema= takes a pydantic model, a TypedDict or a JSON schema", id="not-a-schema"),
    ],
)
def test_a_schema_the_api_cant_take_says_why(schema: object, why: str) -> None:
    with pytest.raises(SchemaError, match=why):
        answer_schema(schema)


def test_nested_models_keep_their_definitions() -> None:
    class Inner(BaseModel):
        x: int

    class Outer(BaseModel):
        inner: Inner
        more: list[Inner]

    schema = answer_schema(Outer)
    assert schema.for_api["properties"]["inner"] == {"$ref": "#/$defs/Inner"}
    assert schema.for_api["$defs"]["Inner"]["additionalProperties"] is False
    assert schema.row({"inner": {"x": 1}, "more": []}) == {"inner": {"x": 1}, "more": []}
