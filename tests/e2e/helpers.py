"""What the end-to-end tests share: submitting meetings through the CLI and reading their jobs back."""

from __future__ import annotations

from tests.factories import write_meeting


def submit_meetings(stack, folder, meetings) -> list[dict]:
    files = [str(write_meeting(folder, m)) for m in meetings]
    return stack.json_lines("submit", *files, "--tenant", "acme", "--wait", "--timeout", "600", "--json")


def shortest(meetings, n) -> list[dict]:
    """The long ones are covered by test_transcripts; these tests are about the flow, kept quick."""
    return sorted(meetings, key=lambda m: m["n_words"])[:n]


def statuses(stack, jobs) -> list[dict]:
    return stack.json_lines("status", *(j["job_id"] for j in jobs), "--json")
