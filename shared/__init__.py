"""Recap's common package: what every process needs. Settings, the stage table and lifecycles, the Celery app,
job states, schemas, the database and the cost model. Nothing here imports torch or a stage's package."""
