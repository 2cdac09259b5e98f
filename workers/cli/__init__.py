"""The `trainlog` command line: one group, commands grouped by theme."""

from workers.cli import data, jobs, run, schema, web  # noqa: F401 - modules register commands
from workers.cli.base import main

__all__ = ["main"]
