"""Model inference for the model workers only (imports torch; ingestion and gate never import this)."""
