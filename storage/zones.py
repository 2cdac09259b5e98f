"""IANA time zone names, checked one way everywhere."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=1024)
def is_time_zone(name: str) -> bool:
    """Whether `name` is a zone the tz database knows. A folder of the database ("America")
    is not a zone: older tzdata packages raise IsADirectoryError for one, newer ones
    ZoneInfoNotFoundError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
