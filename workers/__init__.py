"""The Celery side: app and configuration, producer client, CLI. Depends on tasks and storage."""
