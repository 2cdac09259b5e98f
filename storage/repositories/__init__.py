"""Repositories: one contract (base.Repository), CSV, SQL and in-memory implementations."""

from storage.repositories.base import Page, Repository

__all__ = ["Page", "Repository"]
