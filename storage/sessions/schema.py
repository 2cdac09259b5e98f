"""The JSON Schema shipped for session exports: loaded with importlib.resources, checked by
fastjsonschema-compiled code, refusals explained by jsonschema. Regenerate after a model
change: `python -m storage.sessions.schema`."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
import jsonschema

from storage.errors import ValidationError
from storage.sessions.model import DATA_MODEL_TYPE, TrainingSession

SCHEMA_FILE = "training_session.schema.json"


def generate_schema() -> dict[str, Any]:
    """The schema the model implies, with the data-model stamp required."""
    schema = TrainingSession.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "trainlog training session log"
    # trainlog writes 1; the original design's documents say "0.0.1": both are read
    schema["properties"]["dataModelVersion"] = {"type": ["integer", "string"]}
    # a number (the original design) or text (earlier trainlog data); maxLength binds text only
    schema["properties"]["phase"] = {"type": ["integer", "string", "null"], "maxLength": 2000}
    schema["properties"]["dataModelType"] = {"const": DATA_MODEL_TYPE}
    schema["required"] = sorted({*schema["required"], "dataModelVersion", "dataModelType"})
    return schema


@cache
def shipped_schema() -> dict[str, Any]:
    text = resources.files("storage").joinpath("schemas", SCHEMA_FILE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment"})
# keywords that only ever constrain instances of their own type: they let null through
TYPE_SPECIFIC = frozenset(
    {
        "type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "minLength", "maxLength", "pattern", "format", "items", "minItems", "maxItems",
        "uniqueItems", "properties", "required", "additionalProperties", "minProperties",
        "maxProperties",
    }
)  # fmt: skip


def compiled_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An equivalent schema that jsonschema checks about three times faster: `$ref`s to
    `$defs` inlined (the session schema has no cycles), annotations dropped, and each
    `anyOf: [{type: T, ...}, {type: null}]` that pydantic writes for an optional field folded
    into `type: [T, null]` when the branch's other keywords only constrain a T (they let null
    through, so nothing changes)."""
    definitions = schema.get("$defs", {})

    def compile_node(node: Any) -> Any:
        if isinstance(node, list):
            return [compile_node(item) for item in node]
        if not isinstance(node, dict):
            return node
        reference = node.get("$ref")
        if (
            isinstance(reference, str)
            and reference.removeprefix("#/$defs/") in definitions
            and set(node) - ANNOTATIONS == {"$ref"}
        ):
            return compile_node(definitions[reference.removeprefix("#/$defs/")])
        compiled = {
            key: compile_node(value)
            for key, value in node.items()
            if key not in ANNOTATIONS and key != "$defs"
        }
        return _fold_optional(compiled)

    compiled: dict[str, Any] = compile_node(schema)
    if definitions and '"$ref"' in json.dumps(compiled):  # a reference left as written
        compiled["$defs"] = schema["$defs"]
    return compiled


def _fold_optional(node: dict[str, Any]) -> dict[str, Any]:
    branches = node.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2 or {"type": "null"} not in branches:
        return node
    others = [branch for branch in branches if branch != {"type": "null"}]
    if len(others) != 1 or not isinstance(others[0], dict):
        return node
    other = others[0]
    if (
        not isinstance(other.get("type"), str)
        or set(other) - TYPE_SPECIFIC
        or set(other) & set(node)
    ):
        return node  # e.g. an enum or const would refuse null once folded
    rest = {key: value for key, value in node.items() if key != "anyOf"}
    return {**rest, **other, "type": [other["type"], "null"]}


# keywords draft 7 (what fastjsonschema compiles) reads exactly as draft 2020-12 does, with
# `items` holding one schema; `format` is an annotation for both (neither is told to check it)
SAME_IN_DRAFT7 = TYPE_SPECIFIC | {"const", "enum", "anyOf", "allOf", "oneOf", "not", "$schema"}
SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf")


def _same_in_draft7(node: Any) -> bool:
    """Whether every keyword of the schema `node`, nested ones included, is in SAME_IN_DRAFT7."""
    if isinstance(node, bool):
        return True
    if not isinstance(node, dict) or set(node) - SAME_IN_DRAFT7:
        return False
    children: list[Any] = list(node.get("properties", {}).values())
    children += [node[key] for key in ("items", "additionalProperties", "not") if key in node]
    children += [branch for key in SUBSCHEMA_LISTS for branch in node.get(key, [])]
    return all(_same_in_draft7(child) for child in children)


def fast_check(schema: dict[str, Any]) -> Callable[[Any], bool]:
    """A yes/no check of `schema`: compiled to Python by fastjsonschema (about twenty times
    faster than jsonschema) when its keywords mean the same in draft 7, else jsonschema's."""
    if not _same_in_draft7(schema):
        return jsonschema.Draft202012Validator(schema).is_valid
    compiled = fastjsonschema.compile(
        {key: value for key, value in schema.items() if key != "$schema"},
        use_formats=False,
    )

    def is_valid(document: Any) -> bool:
        try:
            compiled(document)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return is_valid


@cache
def _validators() -> tuple[Callable[[Any], bool], jsonschema.Draft202012Validator]:
    """(fast yes/no check, readable errors), built once per process: the shipped schema never
    changes while it runs. jsonschema on the shipped schema as written has the last word."""
    schema = shipped_schema()
    return fast_check(compiled_schema(schema)), jsonschema.Draft202012Validator(schema)


def check_document(document: Any, *, source: str = "session") -> None:
    """Raise VALIDATION naming the first place `document` breaks the shipped schema."""
    is_valid, explaining = _validators()
    if is_valid(document):
        return
    error = jsonschema.exceptions.best_match(explaining.iter_errors(document))
    if error is None:
        return  # the fast check was stricter than the schema (a `$` in a pattern, say)
    where = ".".join(str(part) for part in error.absolute_path)
    raise ValidationError(
        f"{source}: {where or 'document'}: {error.message[:300]}",
        field=where or "document",
        path=source if source != "session" else None,
    )


if __name__ == "__main__":
    target = resources.files("storage").joinpath("schemas", SCHEMA_FILE)
    with resources.as_file(target) as path:
        path.write_text(json.dumps(generate_schema(), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
