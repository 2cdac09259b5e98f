"""Storage layer: tables, locked CSV files, SQL, repositories, sessions. No Celery here."""
