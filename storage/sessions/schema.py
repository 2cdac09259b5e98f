"""The JSON Schema shipped for session exports: loaded with importlib.resources, checked with
jsonschema. Regenerate after a model change: `python -m storage.sessions.schema`."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from storage.errors import ValidationError
from storage.sessions.model import DATA_MODEL_TYPE, DATA_MODEL_VERSION, TrainingSession

SCHEMA_FILE = "training_session.schema.json"


def generate_schema() -> dict[str, Any]:
    """The schema the model implies, with the data-model stamp required."""
    schema = TrainingSession.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "trainlog training session log"
    schema["properties"]["dataModelVersion"] = {"const": DATA_MODEL_VERSION}
    schema["properties"]["dataModelType"] = {"const": DATA_MODEL_TYPE}
    schema["required"] = sorted({*schema["required"], "dataModelVersion", "dataModelType"})
    return schema


@cache
def shipped_schema() -> dict[str, Any]:
    text = resources.files("storage").joinpath("schemas", SCHEMA_FILE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.Draft202012Validator:
    """Built once per process: the shipped schema never changes while it runs."""
    return jsonschema.Draft202012Validator(shipped_schema())


def check_document(document: Any, *, source: str = "session") -> None:
    """Raise VALIDATION naming the first place `document` breaks the shipped schema."""
    validator = _validator()
    if validator.is_valid(document):
        return
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path) or "document"
        raise ValidationError(
            f"{source}: {where}: {error.message[:300]}",
            field=where,
            path=source if source != "session" else None,
        )


if __name__ == "__main__":
    target = resources.files("storage").joinpath("schemas", SCHEMA_FILE)
    with resources.as_file(target) as path:
        path.write_text(json.dumps(generate_schema(), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
