"""Tenants of the HTTP API: create one (its key and webhook secret are printed once), list, revoke, rotate."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from recap.cli.app import JsonOption, app, console
from recap.cli.jobs import unavailable
from shared import tenants
from shared.config import Settings, get_settings
from shared.db.session import session_scope

tenants_app = typer.Typer(help="API tenants and their keys.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")

Name = Annotated[str, typer.Argument(help="The tenant's name (its jobs and costs are reported under it).")]


def _show(issued: dict[str, str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(issued))
        return
    for key, value in issued.items():
        console.print(f"{key}: [bold]{value}[/]", soft_wrap=True)
    console.print("[yellow]Shown once: Recap keeps only a hash of the key and derives the secret.[/]")


@tenants_app.command()
def create(
    name: Name,
    budget: Annotated[
        Decimal | None,
        typer.Option("--budget", help="Large-model USD per RECAP_BUDGET_PERIOD for this tenant."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a tenant; prints its API key and webhook secret, once."""

    def issue(session: Session, settings: Settings) -> dict[str, str]:
        issued = tenants.create(session, settings, name, budget_usd=budget)
        return {"api_key": issued.api_key, "webhook_secret": issued.webhook_secret}

    _issue(name, issue, as_json)


def _issue(name: str, make: Callable[[Session, Settings], dict[str, str]], as_json: bool) -> None:
    """Runs `make` in a transaction and shows what it issued, once; a TenantError is the command's error."""
    settings = get_settings()
    with unavailable(settings), session_scope(settings.database_url) as session:
        try:
            issued = make(session, settings)
        except tenants.TenantError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
    _show({"tenant": name} | issued, as_json)


@tenants_app.command()
def revoke(name: Name) -> None:
    """Revoke the tenant's API key: every request with it answers 401 from now on (its jobs stay)."""
    settings = get_settings()
    with unavailable(settings), session_scope(settings.database_url) as session:
        if not tenants.revoke(session, name):
            console.print(f"[red]error:[/] no live tenant {name!r}")
            raise typer.Exit(2)
    console.print(f"revoked {name}")


@tenants_app.command("rotate-key")
def rotate_key(name: Name, as_json: JsonOption = False) -> None:
    """A new API key, printed once. The old key keeps working for RECAP_API_KEY_GRACE_S (a day) while clients
    move; a revoked tenant gets its access back with the new key only."""
    _issue(name, lambda session, settings: {"api_key": tenants.rotate_key(session, settings, name)}, as_json)


@tenants_app.command("rotate-secret")
def rotate_secret(name: Name, as_json: JsonOption = False) -> None:
    """A new webhook secret for the tenant (the old one stops signing at once); printed once."""
    _issue(
        name,
        lambda session, settings: {"webhook_secret": tenants.rotate_secret(session, settings, name)},
        as_json,
    )


@tenants_app.command("list")
def list_tenants(as_json: JsonOption = False) -> None:
    """The tenants, without secrets: name, key prefix, budget, created, revoked."""
    settings = get_settings()
    with unavailable(settings), session_scope(settings.database_url) as session:
        rows = tenants.listing(session)
    if as_json:
        for t in rows:
            typer.echo(
                json.dumps(
                    {
                        "tenant": t.name,
                        "key_prefix": t.key_prefix,
                        "budget_usd": None if t.budget_usd is None else float(t.budget_usd),
                        "created_at": t.created_at.isoformat(),
                        "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                    }
                )
            )
        return
    table = Table()
    for column in ("tenant", "key", "budget USD", "created", "revoked"):
        table.add_column(column)
    for t in rows:
        table.add_row(
            t.name,
            t.key_prefix + "…",
            "-" if t.budget_usd is None else f"{t.budget_usd:.2f}",
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "-",
        )
    console.print(table)
