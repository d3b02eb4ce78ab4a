"""Task names and queues: stages send work by name, so no service imports another (or torch)."""

from __future__ import annotations

INGEST = "ingestion.ingest"
SUMMARIZE_SMALL = "small_model.summarize"
GATE = "gate.decide"
SUMMARIZE_LARGE = "large_model.summarize"

# queue name -> the task it serves; the package prefix of a task name routes it.
QUEUES: dict[str, str] = {
    "ingest": INGEST,
    "small": SUMMARIZE_SMALL,
    "gate": GATE,
    "large": SUMMARIZE_LARGE,
}
ROUTES: dict[str, dict[str, str]] = {task: {"queue": queue} for queue, task in QUEUES.items()}
