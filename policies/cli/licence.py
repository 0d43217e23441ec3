"""``policies licence``: record and show model licence acceptances."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from core import cli
from core.cli import ConfigOpt, JsonOpt, out
from policies.cli.common import principal, service

app = cli.new_app("licence", "Model licence acceptance and status.")


@app.command("accept")
@cli.command
def licence_accept(
    model: str = typer.Option(..., "--model", help="Model name from the models registry."),
    user: str = typer.Option(..., "--user", help="Admin accepting (from the directory)."),
    statement: str = typer.Option(
        ..., "--statement", help="e.g. 'Below 700 million monthly active users'."
    ),
    meta_licence_ref: str | None = typer.Option(
        None, "--meta-licence-ref", help="Reference of a licence granted by Meta."
    ),
    config: ConfigOpt = None,
) -> None:
    """Record the acceptance of a model's licence (audited as licence_acceptance)."""
    svc = service(config)
    acc = svc.licence.accept(model, principal(svc, user), statement, meta_licence_ref)
    out.print(
        f"licence {acc.licence_id} accepted for {acc.model_name} by {acc.accepted_by} "
        f"at {acc.accepted_at:%Y-%m-%d %H:%M:%S} UTC (audit record {acc.audit_id})"
    )


@app.command("status")
@cli.command
def licence_status(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    svc = service(config)
    rows = svc.licence.status()
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("model", "licence", "sha256", "accepted", "licence files")
    for r in rows:
        accepted = (
            f"{r['accepted_by']} {r['accepted_at'][:19]}"
            if r["accepted_by"]
            else ("required" if r["requires_acceptance"] else "not required")
        )
        table.add_row(
            r["model"],
            r["licence"],
            (r["sha256"] or "NOT SET")[:16],
            accepted,
            "present" if r["licence_files_present"] else "-",
        )
    out.print(table)
