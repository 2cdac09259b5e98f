"""Locked CSV files: a sidecar lock, atomic replace, exact round-trip of typed values."""

from storage.csv.storage import CsvStorage

__all__ = ["CsvStorage"]
