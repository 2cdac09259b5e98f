"""The session payload (docs/jobs.md) as a strict pydantic model; errors name the field path."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import pydantic
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from storage.errors import ValidationError
from storage.json_values import unique_keys
from storage.values import OUTSIDE_YEARS, check_nesting, in_years

DATA_MODEL_TYPE = "training_session_log"
DATA_MODEL_VERSION = 1
SAFE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$"
CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

MAX_SESSION_SECONDS = 86_400  # a session's durationSec, and its estimate, at most a day
Text = Annotated[str, Field(max_length=2000)]
Label = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(
        strict=True, extra="forbid", populate_by_name=True, allow_inf_nan=False
    )


class WarmupSet(_Strict):
    set: int = Field(ge=0, le=1000)
    weightKg: float = Field(ge=0, le=2000)
    repCount: int = Field(ge=0, le=1000)
    notes: Text | None = None


class RepCount(_Strict):
    full: int = Field(ge=0, le=1000)
    partial: int = Field(default=0, ge=0, le=1000)


class WorkingSet(_Strict):
    set: int = Field(ge=0, le=1000)
    weightKg: float = Field(ge=0, le=2000)
    repCount: RepCount
    rpe: float | None = Field(default=None, ge=0, le=10)
    repAssessment: Text | None = None
    actualRestMinutes: float | None = Field(default=None, ge=0, le=600)
    notes: Text | None = None


class Exercise(_Strict):
    Order: int = Field(ge=0, le=10_000)
    Name: Label
    targetMuscleGroups: list[Label] = Field(default_factory=list, max_length=30)
    warmupSets: list[WarmupSet] = Field(default_factory=list, max_length=100)
    workingSets: list[WorkingSet] = Field(default_factory=list, max_length=100)


class TrainingSession(_Strict):
    id: UUID = Field(alias="_id", strict=False)
    userId: str = Field(pattern=SAFE_ID)
    userName: Text
    date: datetime = Field(strict=False)
    phase: int | Text | None = None  # the original design writes a number, others text
    week: int | None = Field(default=None, ge=0, le=1000)
    isDeloadWeek: bool = False
    focus: Text | None = None
    durationSec: float | None = Field(default=None, ge=0, le=MAX_SESSION_SECONDS)
    exercises: list[Exercise] = Field(max_length=200)
    dataModelVersion: int | Text | None = None  # the original design writes "0.0.1"
    dataModelType: Literal["training_session_log"] | None = None
    _source: dict[str, Any] = PrivateAttr(default_factory=dict)  # the payload as received
    _document: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> TrainingSession:
        """A session from a stored or exported document (already validated once)."""
        session = cls.model_validate(document)
        session._source = document
        return session

    @pydantic.field_validator("exercises")
    @classmethod
    def _unique_order(cls, exercises: list[Exercise]) -> list[Exercise]:
        orders = [exercise.Order for exercise in exercises]
        if len(orders) != len(set(orders)):
            raise ValueError("each exercise needs its own Order")
        return exercises

    @pydantic.field_validator("id", mode="before")
    @classmethod
    def _canonical_uuid(cls, value: Any) -> Any:
        """Types are strict: the 36-character UUID text (either case), not a number, a
        `{...}` or `urn:uuid:` form or 32 bare hex digits, which UUID() would also read."""
        if not isinstance(value, str) or not CANONICAL_UUID.fullmatch(value):
            raise ValueError("must be a UUID written as 8-4-4-4-12 hex digits")
        return value

    @pydantic.field_validator("date", mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        """ISO-8601 text only: a number would be read as seconds since 1970."""
        if not isinstance(value, str):
            raise ValueError("must be an ISO-8601 date and time, as text")
        return value

    @pydantic.field_validator("date")
    @classmethod
    def _plausible_year(cls, value: datetime) -> datetime:
        """In the years a date may name, as written and in UTC (a session's activity row
        starts at its UTC time: 1900-01-01T00:00+14:00 is in 1899)."""
        if not in_years(value.year):
            raise ValueError(f"{OUTSIDE_YEARS}, not {value.year}")
        utc = value.astimezone(UTC) if value.tzinfo else value
        if not in_years(utc.year):
            raise ValueError(f"{OUTSIDE_YEARS} (in UTC too), not {utc.year}")
        return value

    @property
    def session_id(self) -> str:
        return str(self.id)

    def document(self) -> dict[str, Any]:
        """The export document, built once: the payload as received, its values and JSON
        types kept (an integer phase stays an integer, 20 kg stays 20), with `_id` in lower
        case, empty muscle groups filled (when they were) and the data-model stamp added
        where it was missing. Callers must not change it."""
        if self._document is None:
            source = self._source or self.model_dump(mode="json", by_alias=True)
            data = {**source, "_id": self.session_id}
            data["exercises"] = [
                {**entry, "targetMuscleGroups": list(exercise.targetMuscleGroups)}
                for entry, exercise in zip(source["exercises"], self.exercises, strict=True)
            ]
            data.setdefault("dataModelVersion", DATA_MODEL_VERSION)
            data.setdefault("dataModelType", DATA_MODEL_TYPE)
            self._document = data
        return self._document

    def content_hash(self) -> str:
        """Of the payload as received: the same payload saved again after the catalog that
        fills its muscle groups changed is still the same session."""
        source = self._source or self.document()
        canonical = json.dumps(
            {**source, "_id": self.session_id}, sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def _refuse_nul(value: Any, where: str = "") -> None:
    """VALIDATION naming the first text holding a NUL character: no column, CSV cell or
    PostgreSQL text takes one (the session's activity row would be refused later)."""
    if isinstance(value, str) and "\x00" in value:
        raise ValidationError(
            f"session {where or 'payload'}: holds a NUL character, which text may not",
            field=where or "payload",
        )
    if isinstance(value, dict | list):
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for name, child in children:
            _refuse_nul(child, f"{where}.{name}" if where else str(name))


def parse_session(payload: Any, *, max_bytes: int = 1_000_000) -> TrainingSession:
    """Validate a payload (dict or JSON text); VALIDATION names the first bad field."""
    from_text = isinstance(payload, str | bytes)
    dumped = payload
    if from_text:
        if len(payload) > max_bytes:
            raise ValidationError(
                f"session payload is {len(payload):,} bytes; the limit is {max_bytes:,}",
                field="payload",
            )
        try:
            payload = json.loads(payload, object_pairs_hook=unique_keys)
        except (ValueError, RecursionError) as error:
            raise ValidationError(
                f"session payload is not JSON: {error}", field="payload"
            ) from None
    check_nesting(payload, "session payload")  # before json.dumps or validation recurse
    if not isinstance(payload, dict):
        raise ValidationError(
            f"a session must be a JSON object, got {type(payload).__name__}", field="payload"
        )
    if not from_text:
        dumped = json.dumps(payload, default=str)
        if len(dumped) > max_bytes:
            raise ValidationError(
                f"session payload is {len(dumped):,} bytes; the limit is {max_bytes:,}",
                field="payload",
            )
    if ("\\u0000" if isinstance(dumped, str) else b"\\u0000") in dumped:
        _refuse_nul(payload)
    try:
        session = TrainingSession.model_validate(payload)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise ValidationError(
            f"session {where}: {first['msg'].removeprefix('Value error, ')}",
            field=where,
            key=str(payload.get("_id"))[:64],
        ) from None
    session._source = payload
    return session
