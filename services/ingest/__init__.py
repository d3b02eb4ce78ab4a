"""Ingestion: parse and validate a transcript, store its normalized turns, hand the job to the small model."""
