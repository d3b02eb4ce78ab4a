"""Notify: POSTs an ended job to its webhook_url, signed, retried with backoff until delivered or given up."""
