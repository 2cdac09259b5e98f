"""The jobs: plain functions (testable without Celery) and thin Celery tasks over them (jobs.py)."""
