"""``policies db copy``: copy every Enclave table to another database (SQLite -> PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from core import cli
from core.cli import ConfigOpt, err
from core.dbcopy import copy_database, read_url_file, safe_url
from core.errors import UsageError

app = cli.new_app("db", "Database tools (upgrade path: SQLite -> PostgreSQL).")


@app.command("copy")
@cli.command
def db_copy_command(
    to: Annotated[
        str | None, typer.Option("--to", help="Target URL, e.g. postgresql://enclave@db/enclave")
    ] = None,
    to_file: Annotated[
        Path | None,
        typer.Option("--to-file", help="File holding the target URL (keeps the password off ps)"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the rows of a target that holds Enclave data")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Copy every Enclave table of the configured database to another one (e.g. PostgreSQL)."""
    if to is not None and to_file is None:
        target_url = to
    elif to is None and to_file is not None:
        target_url = read_url_file(to_file)
    else:
        raise UsageError("give exactly one of --to URL or --to-file FILE")
    source_url = cli.settings(config).db_url
    with Progress(
        TextColumn("[bold]copying[/bold] {task.description}"),
        TextColumn("{task.completed} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def on_rows(table: str, n: int) -> None:
            if table not in tasks:
                tasks[table] = progress.add_task(table, total=None)
            progress.advance(tasks[table], n)

        result = copy_database(source_url, target_url, force=force, on_rows=on_rows)
    table = RichTable("table", "rows", title=f"{safe_url(source_url)} -> {safe_url(target_url)}")
    for name, rows in result.rows.items():
        table.add_row(name, str(rows))
    err.print(table)
    err.print(
        f"{result.total_rows} rows of {', '.join(result.packages)} copied"
        + (
            f"; {len(result.sequences)} sequences moved past the copied ids"
            if result.sequences
            else ""
        )
    )
    err.print(
        "Next: set database_url (or database_url_file) in the config, keep the audit keys "
        "(<data_dir>/keys), and run `policies audit verify` against the new database."
    )
