"""SQL through SQLAlchemy 2.x: SQLite (WAL) by default, PostgreSQL through psycopg 3."""
