"""The ``ingest`` command: ``ingest sync PATH --source NAME`` and ``ingest status``.

Exit codes: 0 done (a sync whose files partly failed is still done: see the summary);
1 the sync or status failed (index, database, parser); 2 bad configuration or usage;
3 another sync (or another process) holds the store, retry later; 130 interrupted (Ctrl-C;
the next sync resumes where this one stopped).
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.migrate_store import migrate_index_command
from policies.errors import ConfigError, EnclaveError, StoreLockedError, SyncInProgressError
from policies.settings import Settings, load_settings

# The model loader's download/loading bars would garble the JSON consumers and the progress line.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

app = typer.Typer(
    name="ingest",
    help="Sync shared drives into Enclave's index and show sync status.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# `ingest migrate-index`: embedded store -> Qdrant server (deploy/, docs/deploy.md)
app.command("migrate-index")(migrate_index_command)

EXIT_FAILED, EXIT_USAGE, EXIT_BUSY, EXIT_INTERRUPTED = 1, 2, 3, 130
USAGE_CODES = {"ingest.bad_argument", "ingest.embedding_changed", "ingest.root_empty"}

err = Console(stderr=True, highlight=False)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file (default: $ENCLAVE_CONFIG, else defaults)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]


def exit_code_for(exc: EnclaveError) -> int:
    if isinstance(exc, SyncInProgressError | StoreLockedError):
        return EXIT_BUSY
    if isinstance(exc, ConfigError) or exc.code in USAGE_CODES:
        return EXIT_USAGE
    return EXIT_FAILED


def _fail(exc: BaseException, as_json: bool) -> typer.Exit:
    if isinstance(exc, EnclaveError):
        code, message, status = exc.code, exc.message, exit_code_for(exc)
    else:
        code, message, status = "internal.error", f"{type(exc).__name__}: {exc}", EXIT_FAILED
        if os.environ.get("ENCLAVE_DEBUG"):
            traceback.print_exc()
        else:
            message += " (set ENCLAVE_DEBUG=1 for a traceback)"
    if as_json:
        print(json.dumps({"error": {"code": code, "message": message}}))
    err.print(f"[bold red]error[/] {escape(f'[{code}] {message}')}", soft_wrap=True)
    return typer.Exit(status)


def _settings(config: Path | None) -> Settings:
    return load_settings(config)


class _RichProgress:
    """A Rich progress line for a terminal (the total is unknown while the walk streams)."""

    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[phase]}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self.task = self.progress.add_task("sync", total=None, phase="starting", detail="")

    def __call__(self, event: Any) -> None:
        detail = (
            f"{event.scanned} files seen, {event.processed} indexed/checked, "
            f"{event.chunks} chunks written, {event.in_flight} parsing"
        )
        if event.path:
            detail += f"  {event.path[-50:]}"
        self.progress.update(self.task, phase=event.phase, detail=detail)


@app.command()
def sync(
    path: Annotated[Path, typer.Argument(help="Root directory of the share to sync.")],
    source: Annotated[
        str, typer.Option("--source", help="Name of this root in the index (stable per share).")
    ],
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, max=64, help="Parser processes (default ingest.workers)."),
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Parse files that failed before again.")
    ] = False,
    full: Annotated[
        bool,
        typer.Option("--full", help="Re-parse and re-embed every file (after chunking changes)."),
    ] = False,
    allow_empty_root: Annotated[
        bool,
        typer.Option("--allow-empty-root", help="Allow an empty root to delete the whole source."),
    ] = False,
) -> None:
    """Sync PATH into the index as source NAME: only new/changed files are parsed and embedded."""
    from ingest.sync import run_sync

    try:
        settings = _settings(config)
        from policies.access import AccessRules

        warning = AccessRules.load(settings.access_rules).warning
        if warning:
            err.print(f"[yellow]warning[/] {escape(warning)}")
        show_bar = not as_json and err.is_terminal
        bar = _RichProgress() if show_bar else None
        if bar is not None:
            with bar.progress:
                summary = run_sync(
                    settings,
                    path,
                    source,
                    workers,
                    bar,
                    retry_failed=retry_failed,
                    force=full,
                    allow_empty_root=allow_empty_root,
                )
        else:
            summary = run_sync(
                settings,
                path,
                source,
                workers,
                None,
                retry_failed=retry_failed,
                force=full,
                allow_empty_root=allow_empty_root,
            )
    except KeyboardInterrupt:
        err.print("interrupted: the next `ingest sync` resumes and repairs where this one stopped")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        raise _fail(exc, as_json) from None
    if as_json:
        print(json.dumps(summary.as_dict(), indent=2))
        return
    _print_summary(summary.as_dict())


def _print_summary(data: dict[str, Any]) -> None:
    out = Console(highlight=False)
    table = Table(title=f"sync of source '{data['source']}' (run {data['run_id']})")
    for key in ("added", "updated", "renamed", "deleted", "unchanged", "permissions_updated"):
        table.add_column(key.replace("_", " "), justify="right")
    table.add_row(
        *(
            str(data[k])
            for k in ("added", "updated", "renamed", "deleted", "unchanged", "permissions_updated")
        )
    )
    out.print(table)
    out.print(
        f"{data['chunks']} chunks written ({data['embedded']} embedded), "
        f"{data['failed_count']} failed, {data['skipped_count']} skipped, "
        f"{data['seconds']:.1f} s"
    )
    if data["repaired"] or data["orphans_removed"]:
        out.print(
            f"repaired an interrupted sync: {data['repaired']} documents redone, "
            f"{data['orphans_removed']} orphan chunks removed"
        )
    for kind in ("failed", "skipped"):
        for issue in data[kind][:20]:
            out.print(
                f"  {kind}: {issue['path']}  [{issue['code']}] {issue['reason']}", markup=False
            )
        more = data[f"{kind}_count"] - min(20, len(data[kind]))
        if more > 0:
            out.print(f"  ... and {more} more {kind} (see `ingest status` or --json)")


@app.command()
def status(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Per source: files by state, chunks, the last sync and recent errors."""
    from ingest.status import collect_status

    try:
        sources = collect_status(_settings(config))
    except Exception as exc:
        raise _fail(exc, as_json) from None
    if as_json:
        print(json.dumps({"sources": [s.as_dict() for s in sources]}, indent=2))
        return
    out = Console(highlight=False)
    if not sources:
        out.print("no source synced yet: run `ingest sync PATH --source NAME`")
        return
    for src in sources:
        data = src.as_dict()
        files = ", ".join(f"{n} {state}" for state, n in sorted(data["files"].items())) or "none"
        out.print(f"[bold]{escape(src.name)}[/]  {escape(src.root)}")
        out.print(
            f"  files: {files}; chunks: {src.chunks}" + ("  (sync running)" if src.running else "")
        )
        last = src.last_sync
        if last is None:
            out.print("  last sync: never")
        else:
            took = f", {last.seconds:.1f} s" if last.seconds is not None else ""
            out.print(
                f"  last sync: run {last.run_id} {last.status}, started "
                f"{last.started_at:%Y-%m-%d %H:%M:%S} UTC{took}"
            )
            if last.error_code:
                out.print(f"    [{last.error_code}] {last.error_message}", markup=False)
        for e in src.recent_errors:
            out.print(f"  {e.status}: {e.path}  [{e.code}] {e.message}", markup=False)


if __name__ == "__main__":
    app()
