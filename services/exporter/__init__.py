"""The metrics exporter: a deployed process of its own, reading queue lengths and the jobs table."""
