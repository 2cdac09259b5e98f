"""Declarative table definitions: the one source of CSV headers, SQL schema, validation, docs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ColumnType(StrEnum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"
    JSON = "json"


SPORTS = ("run", "ride", "swim", "strength", "walk", "hike", "row", "ski", "other")
BOOKKEEPING = ("createdAt", "updatedAt", "version")


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    timezone: bool = False  # a string column that must hold an IANA timezone name


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    backend: str = "csv"  # default placement; Settings.table_backends overrides it
    secret: bool = False  # file mode 0600, values never logged
    module: str = "core"  # which folder of Alembic revisions owns its SQL table
    partition: str | None = None  # date column whose month names the CSV file of a row
    indexes: tuple[tuple[str, ...], ...] = ()  # SQL indexes beside the key's, by columns
    internal: bool = False  # the pipeline's own coordination state: SQL only, never a job's

    @property
    def all_columns(self) -> tuple[Column, ...]:
        """Data columns followed by the bookkeeping columns every row carries."""
        return (
            *self.columns,
            Column("createdAt", ColumnType.DATETIME),
            Column("updatedAt", ColumnType.DATETIME),
            Column("version", ColumnType.INT),
        )

    @property
    def movable(self) -> bool:
        """Whether TRAINLOG_TABLE_BACKENDS may place it on either backend: the session and
        reference-data tables are read with SQL of their own, so they stay in SQL."""
        return self.module == "core" and not self.internal

    @property
    def headers(self) -> list[str]:
        return [column.name for column in self.all_columns]

    def column(self, name: str) -> Column:
        for column in self.all_columns:
            if column.name == name:
                return column
        raise KeyError(name)


S, I, F, B, D, T, J = (
    ColumnType.STRING,
    ColumnType.INT,
    ColumnType.FLOAT,
    ColumnType.BOOL,
    ColumnType.DATE,
    ColumnType.DATETIME,
    ColumnType.JSON,
)


def _c(name: str, kind: ColumnType, **options: object) -> Column:
    return Column(name, kind, **options)  # type: ignore[arg-type]


def _sport(required: bool = True) -> Column:
    return Column("sport", S, required=required, choices=SPORTS)


def _nonneg(name: str, kind: ColumnType = F, **options: object) -> Column:
    return _c(name, kind, minimum=0, **options)


MAX_ACTIVITY_SECONDS = 7 * 86_400  # one activity: a week (multi-day ultras fit)
MAX_ACTIVITY_METRES = 10_000_000  # 10,000 km


# fmt: off
DEFINITIONS: tuple[Table, ...] = (
    Table("activities", ("activityId",), (
        _c("activityId", S, required=True), _c("athleteId", S, required=True),
        _c("startTime", T, required=True), _sport(),
        _nonneg("durationSec", required=True, maximum=MAX_ACTIVITY_SECONDS),
        _nonneg("distanceM", maximum=MAX_ACTIVITY_METRES), _c("avgHr", F, minimum=20, maximum=260),
        _nonneg("normalizedPowerW", maximum=3000), _nonneg("avgPowerW", maximum=3000),
        _c("rpe", F, minimum=0, maximum=10), _c("name", S), _c("source", S), _c("sessionId", S),
        _nonneg("volumeKg"),
    ), partition="startTime", indexes=(("athleteId", "startTime"),)),
    Table("planned_sessions", ("plannedSessionId",), (
        _c("plannedSessionId", S, required=True), _c("athleteId", S, required=True),
        _c("date", D, required=True), _sport(), _nonneg("plannedLoad"),
        _nonneg("plannedDurationSec"), _c("title", S), _c("templateId", S),
    ), indexes=(("athleteId", "date"),)),
    Table("links", ("linkId",), (
        _c("linkId", S, required=True), _c("athleteId", S, required=True),
        _c("plannedSessionId", S, required=True), _c("activityId", S, required=True),
        _c("method", S, required=True, choices=("auto", "manual")),
    )),
    Table("activities_metrics", ("activityId",), (
        _c("activityId", S, required=True), _c("athleteId", S, required=True),
        _c("date", D, required=True), _nonneg("load"), _c("loadMethod", S),
        _nonneg("intensityFactor"), _nonneg("durationSec"), _nonneg("distanceM"),
    ), partition="date", indexes=(("athleteId", "date"),)),
    Table("planned_metrics", ("plannedSessionId",), (
        _c("plannedSessionId", S, required=True), _c("athleteId", S, required=True),
        _c("date", D, required=True), _nonneg("plannedLoad"), _nonneg("actualLoad"),
        _nonneg("compliance"), _c("activityIds", J),
    ), indexes=(("athleteId", "date"),)),
    Table("daily_metrics", ("athleteId", "date"), (
        _c("athleteId", S, required=True), _c("date", D, required=True), _nonneg("load"),
        _nonneg("durationSec"), _nonneg("distanceM"), _nonneg("activityCount", I),
        _c("ctl", F), _c("atl", F), _c("tsb", F),
    ), partition="date"),
    Table("weekly_metrics", ("athleteId", "weekStartDate"), (
        _c("athleteId", S, required=True), _c("weekStartDate", D, required=True),
        _nonneg("load"), _nonneg("durationSec"), _nonneg("distanceM"),
        _nonneg("activityCount", I), _nonneg("plannedLoad"), _nonneg("compliance"),
        _nonneg("monotony"), _nonneg("strain"), _nonneg("acwr"),
        _c("ctl", F), _c("atl", F), _c("tsb", F),
    ), partition="weekStartDate"),
    Table("thresholds", ("thresholdId",), (
        _c("thresholdId", S, required=True), _c("athleteId", S, required=True), _sport(),
        _c("validFrom", D, required=True), _c("ftpW", F, minimum=1, maximum=3000),
        _c("thresholdHr", F, minimum=40, maximum=250),
    )),
    Table("goals", ("goalId",), (
        _c("goalId", S, required=True), _c("athleteId", S, required=True),
        _c("title", S, required=True), _c("targetDate", D), _c("metric", S),
        _c("targetValue", F), _c("status", S, choices=("open", "achieved", "dropped")),
    )),
    Table("templates", ("templateId",), (
        _c("templateId", S, required=True), _c("name", S, required=True), _sport(False),
        _c("description", S), _nonneg("plannedLoad"), _nonneg("durationSec"),
        _c("structure", J),
    )),
    Table("session_templates", ("templateId",), (
        _c("templateId", S, required=True), _c("name", S, required=True), _c("focus", S),
        _c("exercises", J), _c("source", S, choices=("factory", "user")),
    )),
    Table("athlete", ("athleteId",), (
        _c("athleteId", S, required=True), _c("name", S), _c("timezone", S, timezone=True),
        _c("coachId", S), _c("birthYear", I, minimum=1900, maximum=2100),
    )),
    Table("settings", ("coachId",), (
        _c("coachId", S, required=True), _c("name", S), _c("email", S), _c("preferences", J),
    )),
    Table("tokens", ("athleteId", "provider"), (
        _c("athleteId", S, required=True), _c("provider", S, required=True),
        _c("accessToken", S), _c("refreshToken", S), _c("expiresAt", T), _c("scope", S),
    ), secret=True),
    # SQL-only tables: sessions with queryable exercises and sets, and the failure log.
    Table("training_sessions", ("sessionId",), (
        _c("sessionId", S, required=True), _c("userId", S, required=True), _c("userName", S),
        _c("date", T, required=True), _c("phase", S), _c("week", I), _c("isDeloadWeek", B),
        _c("focus", S), _nonneg("durationSec"), _c("payloadHash", S), _c("jsonPath", S),
        _c("document", J), _c("activityVersion", I),  # the version its activity row is of
    ), backend="sql", module="sessions", indexes=(("activityVersion",),)),
    Table("session_exercises", ("sessionId", "exerciseOrder"), (
        _c("sessionId", S, required=True), _c("exerciseOrder", I, required=True),
        _c("name", S, required=True), _c("targetMuscleGroups", J),
    ), backend="sql", module="sessions"),
    Table("session_sets", ("sessionId", "exerciseOrder", "kind", "position"), (
        _c("sessionId", S, required=True), _c("exerciseOrder", I, required=True),
        _c("kind", S, required=True, choices=("warmup", "working")),
        _c("position", I, required=True), _c("setNumber", I), _nonneg("weightKg"),
        _nonneg("repFull", I),
        _nonneg("repPartial", I), _c("rpe", F), _c("repAssessment", S),
        _nonneg("actualRestMinutes"), _c("notes", S),
    ), backend="sql", module="sessions"),
    Table("task_failures", ("failureId",), (
        _c("failureId", S, required=True), _c("taskId", S), _c("taskName", S, required=True),
        _c("arguments", J), _c("errorCode", S), _c("error", S), _c("failedAt", T),
    ), backend="sql"),
    # The pipeline's coordination, shared by every worker host (storage/coordination.py):
    # athletes waiting for a recompute, and named marks (a flush scheduled, the rollup
    # watermark, the export folder's identity). Times are seconds since the epoch.
    Table("recompute_pending", ("athleteId",), (
        _c("athleteId", S, required=True), _c("since", D), _c("markedAt", F, required=True),
    ), backend="sql", internal=True),
    Table("coordination_marks", ("name",), (
        _c("name", S, required=True), _c("value", S), _c("markedAt", F, required=True),
    ), backend="sql", internal=True),
    # Reference data: bundled datasets imported to SQL, their status and audit trail.
    Table("exercise_catalog", ("exerciseId",), (
        _c("exerciseId", S, required=True), _c("name", S, required=True),
        _c("targetMuscleGroups", J), _c("category", S), _c("equipment", S),
        _c("source", S, choices=("factory", "user")), _c("active", B),
    ), backend="sql", module="seeds"),
    Table("reference_session_templates", ("templateId",), (
        _c("templateId", S, required=True), _c("name", S, required=True), _c("focus", S),
        _c("exercises", J), _c("source", S, choices=("factory", "user")), _c("active", B),
    ), backend="sql", module="seeds"),
    Table("seed_imports", ("dataset",), (
        _c("dataset", S, required=True), _c("contentHash", S, required=True),
        _c("datasetVersion", S), _c("entries", I), _c("importedAt", T),
    ), backend="sql", module="seeds"),
    Table("seed_audit", ("auditId",), (
        _c("auditId", S, required=True), _c("dataset", S, required=True),
        _c("entryId", S, required=True), _c("action", S, required=True),
        _c("previousValue", J), _c("newValue", J), _c("reason", S), _c("changedAt", T),
        _c("changedBy", S),
    ), backend="sql", module="seeds"),
    Table("seed_backups", ("backupId",), (
        _c("backupId", S, required=True), _c("dataset", S, required=True),
        _c("takenAt", T), _c("takenBy", S), _c("reason", S), _c("document", J),
    ), backend="sql", module="seeds"),
)
# fmt: on

TABLES: dict[str, Table] = {table.name: table for table in DEFINITIONS}
CSV_LAYER_TABLES = tuple(table.name for table in DEFINITIONS if table.backend == "csv")


def get_table(name: str) -> Table:
    """Look a table up by name; an unknown name is a VALIDATION error listing the known ones."""
    from storage.errors import ValidationError

    try:
        return TABLES[name]
    except KeyError:
        raise ValidationError(
            f"unknown table {name!r}; known tables: {', '.join(sorted(TABLES))}",
            table=name,
            field="table",
        ) from None
