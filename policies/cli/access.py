"""``policies check-access``: explain whether a user may read a path, and why."""

from __future__ import annotations

import typer
from rich.markup import escape

from core import cli
from core.cli import ConfigOpt, out
from core.errors import EXIT_DENIED
from policies.cli.common import principal, service


@cli.command
def check_access(
    path: str = typer.Argument(..., help="File path relative to its source root."),
    user: str = typer.Option(..., "--user"),
    source: str = typer.Option("default", "--source", help="Name of the synced source."),
    config: ConfigOpt = None,
) -> None:
    """Explain which rule decides PATH and whether USER may read it (exit 4 if not)."""
    svc = service(config)
    who = principal(svc, user)
    match = svc.rules.match(source, path)
    out.print(match.explain(), markup=False, highlight=False)
    if match.classification:
        out.print(f"classification: {match.classification}")
    shared = sorted(set(match.groups) & who.groups)
    groups = escape(", ".join(sorted(who.groups)) or "none")
    user = escape(user)
    if shared:
        out.print(
            f"[green]{user} (groups: {groups}) CAN read it via {escape(', '.join(shared))}[/green]"
        )
        return
    out.print(f"[red]{user} (groups: {groups}) CANNOT read it[/red]")
    raise typer.Exit(EXIT_DENIED)
