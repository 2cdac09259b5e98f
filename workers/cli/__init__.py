"""The `trainlog` command line: one group, commands grouped by theme."""

from workers.cli import data, jobs, run  # noqa: F401 - each module registers its commands
from workers.cli.base import main

__all__ = ["main"]
