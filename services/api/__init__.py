"""The HTTP API: tenants submit transcripts, read jobs and usage, and get webhooks (`recap api`)."""
