"""Storage layer: table definitions, locked CSV files, SQL, repositories, sessions. No Celery here."""
