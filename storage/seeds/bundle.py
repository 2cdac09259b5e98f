"""Reading one bundled dataset: validated before anything is written; hashed for change checks."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from storage.errors import SeedDataError

DEFAULT_PACKAGE = "storage.seeds.data"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    table: str
    key: str
    fields: tuple[str, ...]


DATASETS = (
    DatasetSpec(
        "exercise_catalog",
        "exercise_catalog",
        "exerciseId",
        ("name", "targetMuscleGroups", "category", "equipment"),
    ),
    DatasetSpec(
        "session_templates",
        "reference_session_templates",
        "templateId",
        ("name", "focus", "exercises"),
    ),
)


@dataclass(frozen=True)
class Bundle:
    spec: DatasetSpec
    version: str
    entries: dict[str, dict[str, Any]]  # id -> data fields
    content_hash: str


def load_bundle(spec: DatasetSpec, package: str = DEFAULT_PACKAGE) -> Bundle:
    """The dataset from the installed package (never a path outside it), or SEED_DATA."""
    source = f"{package}/{spec.name}.json"
    try:
        text = resources.files(package).joinpath(f"{spec.name}.json").read_text("utf-8")
        document = json.loads(text)
    except (OSError, ModuleNotFoundError, UnicodeDecodeError, ValueError) as error:
        raise SeedDataError(
            f"bundled dataset {source} cannot be read: {error}", path=source
        ) from None
    return parse_bundle(spec, document, source)


def parse_bundle(spec: DatasetSpec, document: Any, source: str) -> Bundle:
    """A dataset document (the bundled file, or one a person uploads) checked entry by entry;
    SEED_DATA naming `source` and the entry otherwise."""
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise SeedDataError(f"{source}: expected an object with an 'entries' list", path=source)
    entries: dict[str, dict[str, Any]] = {}
    for position, entry in enumerate(document["entries"], start=1):
        where = f"{source} entry {position}"
        if not isinstance(entry, dict) or not isinstance(entry.get(spec.key), str):
            raise SeedDataError(f"{where}: needs a text {spec.key}", path=source)
        unknown = set(entry) - {spec.key, *spec.fields}
        if unknown:
            raise SeedDataError(f"{where}: unknown field {sorted(unknown)[0]!r}", path=source)
        if not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise SeedDataError(f"{where}: needs a name", path=source)
        if entry[spec.key] in entries:
            raise SeedDataError(f"{where}: duplicate {spec.key} {entry[spec.key]!r}", path=source)
        entries[entry[spec.key]] = {name: entry.get(name) for name in spec.fields}
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":"))
    return Bundle(
        spec,
        str(document.get("version", "")),
        entries,
        hashlib.sha256(canonical.encode()).hexdigest(),
    )
