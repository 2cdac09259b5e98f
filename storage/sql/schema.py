"""SQL tables built from the declarative definitions (Alembic revisions are generated from this)."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa

from storage.codecs import codec_of
from storage.tables import DEFINITIONS, Column, ColumnType, Table


def _sql_type(column: Column) -> sa.types.TypeEngine[Any]:
    return codec_of(column.type).sql_type()


def _sql_column(table: Table, column: Column) -> sa.Column:
    is_key = column.name in table.key
    kind = sa.String(255) if is_key and column.type is ColumnType.STRING else _sql_type(column)
    return sa.Column(
        column.name, kind, primary_key=is_key, nullable=not (is_key or column.required)
    )


@cache
def sql_metadata() -> sa.MetaData:
    """Every table definition as a SQLAlchemy table (built once; immutable afterwards)."""
    metadata = sa.MetaData()
    for table in DEFINITIONS:
        sa.Table(
            table.name,
            metadata,
            *(_sql_column(table, c) for c in table.all_columns),
            *(sa.Index(f"ix_{table.name}_{'_'.join(cols)}", *cols) for cols in table.indexes),
        )
    return metadata


def sql_table(name: str) -> sa.Table:
    return sql_metadata().tables[name]
