"""Recap's common package: settings, Celery app, task names, schemas, database and cost model."""
