"""``policies users``: local accounts (sign-in for the embedded default)."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from core import cli
from core.cli import ConfigOpt, JsonOpt, err, out
from policies.cli.common import admin_event, service

app = cli.new_app("users", "Local accounts (sign-in for the embedded default).")

PasswordOpt = typer.Option(
    ...,
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="New password (prompted when omitted).",
)


@app.command("add")
@cli.command
def users_add(name: str, password: str = PasswordOpt, config: ConfigOpt = None) -> None:
    """Create a local account; its groups and roles come from the directory entry NAME."""
    svc = service(config)
    svc.accounts.create(name, password)
    admin_event(svc, "users.add", target=name)
    out.print(f"account '{name}' created")
    if svc.directory.entry(name) is None:
        err.print(
            f"[yellow]warning: '{name}' is not in the directory: it signs in with no "
            "groups and reads nothing[/yellow]"
        )


@app.command("disable")
@cli.command
def users_disable(name: str, config: ConfigOpt = None) -> None:
    svc = service(config)
    svc.accounts.disable(name)
    admin_event(svc, "users.disable", target=name)
    out.print(f"account '{name}' disabled")


@app.command("enable")
@cli.command
def users_enable(name: str, config: ConfigOpt = None) -> None:
    svc = service(config)
    svc.accounts.enable(name)
    admin_event(svc, "users.enable", target=name)
    out.print(f"account '{name}' enabled")


@app.command("reset-password")
@cli.command
def users_reset(name: str, password: str = PasswordOpt, config: ConfigOpt = None) -> None:
    svc = service(config)
    svc.accounts.reset_password(name, password)
    admin_event(svc, "users.reset_password", target=name)
    out.print(f"password of '{name}' reset")


@app.command("list")
@cli.command
def users_list(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    svc = service(config)
    rows: list[dict[str, Any]] = []
    for acc in svc.accounts.list():
        entry = svc.directory.entry(acc.name)
        rows.append(
            {
                "name": acc.name,
                "disabled": acc.disabled or bool(entry and entry.disabled),
                "locked_until": acc.locked_until.isoformat() if acc.locked_until else None,
                "groups": sorted(entry.groups) if entry else [],
                "roles": sorted(entry.roles) if entry else [],
                "in_directory": entry is not None,
            }
        )
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("name", "status", "groups", "roles")
    for r in rows:
        status = "disabled" if r["disabled"] else ("locked" if r["locked_until"] else "active")
        table.add_row(
            r["name"], status, ", ".join(r["groups"]) or "-", ", ".join(r["roles"]) or "-"
        )
    out.print(table)
