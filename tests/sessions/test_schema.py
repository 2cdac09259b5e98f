"""The compiled export schema accepts and refuses exactly what the shipped schema does."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from storage.errors import ValidationError
from storage.sessions.model import parse_session
from storage.sessions.schema import (
    _same_in_draft7,
    check_document,
    compiled_schema,
    fast_check,
    shipped_schema,
)
from tests.factories import session_payload

BAD_VALUES: list[Any] = [
    None, -1, 0, 2.5, 3.0, 10**7, "", "x" * 2500, "a\n", True, [], {}, ["a"], {"a": 1}
]  # fmt: skip


def leaf_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaf_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaf_paths(value, (*path, index))


def with_value(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


def without(document: Any, path: tuple[Any, ...]) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return changed


def variants(document: dict[str, Any]) -> Iterator[Any]:
    yield document
    for path in leaf_paths(document):
        if not path:
            continue
        for value in BAD_VALUES:
            yield with_value(document, path, value)
        yield without(document, path)
        if isinstance(path[-1], str):  # a property: also try an extra one beside it
            yield with_value(document, (*path[:-1], "unexpected"), 1)


def test_compiled_schema_has_no_references_or_optional_unions() -> None:
    text = json.dumps(compiled_schema(shipped_schema()))
    assert "$ref" not in text and "anyOf" not in text and "$defs" not in text


def test_compiled_and_shipped_schema_agree_on_every_mutation() -> None:
    document = parse_session(session_payload(3)).document()
    shipped = jsonschema.Draft202012Validator(shipped_schema())
    compiled = jsonschema.Draft202012Validator(compiled_schema(shipped_schema()))
    fast = fast_check(compiled_schema(shipped_schema()))
    verdicts = [
        (shipped.is_valid(variant), compiled.is_valid(variant), fast(variant), variant)
        for variant in variants(document)
    ]
    assert all(a == b for a, b, _, _ in verdicts)
    # the compiled check may only be stricter, and only where a pattern's `$` meets a final
    # newline (Python's `$` matches before one; fastjsonschema's, like ECMA 262's, does not)
    stricter = [variant for valid, _, quick, variant in verdicts if valid != quick]
    assert all(not quick for valid, _, quick, _ in verdicts if valid != quick)
    assert all('"a\\n"' in json.dumps(variant) for variant in stricter)
    refused = sum(1 for valid, *_ in verdicts if not valid)
    assert 100 < refused < len(verdicts)  # the mutations exercise both outcomes


def test_check_document_names_the_nested_field() -> None:
    document = parse_session(session_payload(1)).document()
    broken = with_value(document, ("exercises", 0, "workingSets", 1, "rpe"), 11)
    with pytest.raises(ValidationError) as caught:
        check_document(broken, source="file.json")
    assert caught.value.field == "exercises.0.workingSets.1.rpe"
    assert "file.json" in caught.value.message
    check_document(document)  # the untouched document passes


def test_only_optional_branches_that_let_null_through_are_folded() -> None:
    schema = {
        "type": "object",
        "properties": {
            "size": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
            "kind": {"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "null"}]},
        },
    }
    compiled = compiled_schema(schema)["properties"]
    assert compiled["size"] == {"type": ["integer", "null"], "minimum": 1}
    assert "anyOf" in compiled["kind"]  # not folded: its enum would refuse null
    shipped = jsonschema.Draft202012Validator(schema)
    fast = jsonschema.Draft202012Validator(compiled_schema(schema))
    for document in ({"size": None, "kind": None}, {"size": 0}, {"kind": "c"}, {"kind": "a"}):
        assert shipped.is_valid(document) == fast.is_valid(document)


def test_a_reference_with_constraints_beside_it_keeps_its_definitions() -> None:
    schema = {
        "$defs": {"Reps": {"type": "integer", "minimum": 0}},
        "type": "object",
        "properties": {
            "plain": {"$ref": "#/$defs/Reps", "description": "inlined"},
            "capped": {"$ref": "#/$defs/Reps", "maximum": 10},
        },
    }
    compiled = compiled_schema(schema)
    assert compiled["properties"]["plain"] == {"type": "integer", "minimum": 0}
    assert compiled["properties"]["capped"]["$ref"] == "#/$defs/Reps"
    shipped = jsonschema.Draft202012Validator(schema)
    fast = jsonschema.Draft202012Validator(compiled)
    for document in ({"plain": 1, "capped": 5}, {"plain": -1}, {"capped": 11}, {"capped": -1}):
        assert shipped.is_valid(document) == fast.is_valid(document)


def test_the_session_schema_is_checked_by_compiled_code() -> None:
    assert _same_in_draft7(compiled_schema(shipped_schema()))
    assert not hasattr(fast_check(compiled_schema(shipped_schema())), "__self__")  # no jsonschema


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "prefixItems": [{"type": "integer"}]},  # draft 7 ignores prefixItems
        {"type": "array", "items": [{"type": "integer"}]},  # a tuple in draft 7, an error after
        {"properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"type": "integer"}}},
        {"properties": {"a": {"dependentRequired": {"b": ["c"]}}}},  # nested, unknown to draft 7
    ],
)
def test_keywords_draft_7_reads_differently_stay_with_jsonschema(schema: dict[str, Any]) -> None:
    assert not _same_in_draft7(schema)
    bound_to = getattr(fast_check(schema), "__self__", None)
    assert isinstance(bound_to, jsonschema.Draft202012Validator)


def test_a_fast_refusal_the_schema_does_not_share_lets_the_document_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = parse_session(session_payload(1)).document()
    explaining = jsonschema.Draft202012Validator(shipped_schema())
    monkeypatch.setattr(
        "storage.sessions.schema._validators", lambda: (lambda _document: False, explaining)
    )
    check_document(document)  # jsonschema on the shipped schema has the last word
    with pytest.raises(ValidationError):
        check_document(with_value(document, ("exercises", 0, "Order"), "first"))
