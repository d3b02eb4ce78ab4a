"""The README and docs/ say only what exists: the README stays short and its links lead somewhere; every `recap`
command the docs show (usage lines included: each alternative and optional part) names a real command and real
options (its `--help` answers). (The API's curl examples and the webhook receiver run for real in tests/integration/api/test_doc_*.py;
the site's own links and anchors are checked by the strict `mkdocs build` in `make test`.)"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from recap.cli import app
from shared.config import REPO

PLACEHOLDERS = {"JOB_ID": "00000000-0000-0000-0000-000000000000", "N": "3", "USD": "0.01", "DIR": "dir"}


def shell_blocks(text: str) -> Iterator[str]:
    """The text of each ```bash (or unlabelled) fenced block, fences paired in order."""
    block: list[str] | None = None
    for line in text.splitlines():
        if block is None and line.startswith("```"):
            block = [] if line.strip() in ("```", "```bash", "```sh") else ["<not shell>"]
        elif block is not None and line.strip() == "```":
            if block[:1] != ["<not shell>"]:
                yield "\n".join(block)
            block = None
        elif block is not None:
            block.append(line)


def shown_commands() -> Iterator[tuple[str, str]]:
    """(page, command line) for each `recap` command in a shell block, continuation lines joined, comments and
    environment assignments dropped."""
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for block in shell_blocks(page.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip().removesuffix("&").strip()
                line = re.sub(r"^(\w+=\S+\s+)+", "", line).removeprefix(".venv/bin/")
                if line.startswith("recap ") and "─" not in line:  # not the picture's arrows
                    yield page.name, line


def variants(tokens: list[str]) -> list[list[str]]:
    """A usage line's concrete commands: optional `[...]` parts included, each `a|b` alternative on its own."""
    if (
        "|" in tokens
    ):  # `recap jobs retry JOB_ID ... | --code stage_timeout`: the right side takes the left's words
        at = tokens.index("|")
        words = [t for t in tokens[:at] if re.fullmatch(r"[a-z][a-z-]*", t)]
        return variants(tokens[:at]) + variants(words + tokens[at + 1 :])
    for i, token in enumerate(tokens):
        if "|" in token and not token.startswith("-"):  # `create|list|revoke`
            return [
                v for choice in token.split("|") for v in variants([*tokens[:i], choice, *tokens[i + 1 :]])
            ]
    return [[PLACEHOLDERS.get(t, t) for t in tokens if t not in ("...", "…")]]


def tokens_of(line: str) -> list[str]:
    return shlex.split(line.replace("[", " ").replace("]", " "))[1:]


def parse(args: list[str]) -> Result:
    """`recap ARGS --help`: runs nothing, yet fails (exit 2) on a command or an option that does not exist."""
    return CliRunner().invoke(app, [*args, "--help"])


def test_the_readme_is_short_and_its_links_lead_somewhere() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if not t.startswith(("http://", "https://"))]
    assert local and [t for t in local if not (REPO / t).exists()] == []


def test_the_docs_show_dozens_of_commands() -> None:
    assert len(list(shown_commands())) > 30


@pytest.mark.parametrize(("page", "line"), list(shown_commands()))
def test_every_command_the_docs_show_exists_with_its_options(page: str, line: str) -> None:
    for args in variants(tokens_of(line)):
        result = parse(args)
        assert result.exit_code == 0, f"{page}: `recap {' '.join(args)}`: {result.output}"


def shown_make_targets() -> set[str]:
    return {
        line.split()[1]
        for page in [REPO / "README.md", *(REPO / "docs").glob("*.md")]
        for block in shell_blocks(page.read_text())
        for line in block.splitlines()
        if line.startswith("make ")
    }


def test_every_make_target_the_docs_show_exists() -> None:
    targets = shown_make_targets()
    assert {"demo", "test", "docs", "eval-tune"} <= targets
    dry = subprocess.run(
        ["make", "-n", *sorted(targets)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert dry.returncode == 0, dry.stderr


def test_a_command_or_option_that_does_not_exist_is_caught() -> None:
    assert parse(["submit", "a.vtt", "--json"]).exit_code == 0
    assert parse(["submit", "a.vtt", "--no-such-option"]).exit_code == 2
    assert parse(["tenants", "no-such-command"]).exit_code == 2
    assert variants(tokens_of("recap jobs retry JOB_ID ... | --code stage_timeout")) == [
        ["jobs", "retry", PLACEHOLDERS["JOB_ID"]],
        ["jobs", "retry", "--code", "stage_timeout"],
    ]
