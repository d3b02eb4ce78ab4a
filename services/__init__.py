"""Recap's workers: one sub-package per stage, talking only through named tasks on their own queues."""
