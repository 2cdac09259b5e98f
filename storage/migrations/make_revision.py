"""Developers: generate a revision for one module from the table definitions.

python -m storage.migrations.make_revision core "add goals.priority"
"""

from __future__ import annotations

import sys
import tempfile

from alembic import command

from storage.migrations import (
    MODULES,
    alembic_config,
    head_revisions,
    history,
    locked_connection,
)
from storage.migrations import upgrade as upgrade_to
from storage.sql.database import Database


def main(module: str, message: str) -> None:
    if module not in MODULES:
        raise SystemExit(f"module must be one of {', '.join(MODULES)}")
    with tempfile.TemporaryDirectory() as scratch:
        database = Database(f"sqlite:///{scratch}/scratch.sqlite")
        if head_revisions():
            upgrade_to(database)
        with locked_connection(database) as connection:
            config = alembic_config(connection)
            config.attributes["module"] = module
            has_branch = any(module in rev["branches"] for rev in history())
            command.revision(
                config,
                message=message,
                autogenerate=True,
                head=f"{module}@head" if has_branch else "base",
                branch_label=None if has_branch else module,
                version_path=str(config.get_main_option("script_location")) + f"/versions/{module}",
            )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
