"""One codec per column type: its SQL type, its dtype in a frame, how a value is made
canonical (one at a time, and a whole column at once), and how it moves between its
canonical Python form and frame form (dates, timestamps and JSON as text). The CSV reader and
writer, the row and frame validators and the SQL schema all take a type's rules from here."""

from __future__ import annotations

from storage.codecs.base import Codec, Problems
from storage.codecs.scalars import BoolCodec, FloatCodec, IntCodec, TextCodec
from storage.codecs.structured import DateCodec, DatetimeCodec, JsonCodec
from storage.tables import ColumnType

CODECS: dict[ColumnType, Codec] = {
    ColumnType.STRING: TextCodec(),
    ColumnType.INT: IntCodec(),
    ColumnType.FLOAT: FloatCodec(),
    ColumnType.BOOL: BoolCodec(),
    ColumnType.DATE: DateCodec(),
    ColumnType.DATETIME: DatetimeCodec(),
    ColumnType.JSON: JsonCodec(),
}


def codec_of(kind: ColumnType) -> Codec:
    return CODECS[kind]


__all__ = ["CODECS", "Codec", "Problems", "codec_of"]
