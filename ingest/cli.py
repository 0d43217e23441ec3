"""The ``ingest`` command: ``sync``, ``status``, ``worker``, ``migrate-index`` and
``prepare-model``.

Follows the CLI contract of :mod:`core.cli` (one ``--config``, one error line, one exit-code
map). For ``sync``: a sync whose files partly failed is still done (exit 0; see the summary);
3 means another sync of the store runs, or the UI holds the embedded store; 130 interrupted
(the next sync resumes where this one stopped).
"""

from __future__ import annotations

import json
from contextlib import closing, nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from core import cli
from core.cli import ConfigOpt, JsonOpt, err
from core.errors import EXIT_INTERRUPTED, SameIndexError

app = cli.new_app("ingest", "Sync shared drives into Enclave's index and show sync status.")


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
    path: Annotated[
        str,
        typer.Argument(
            help="Root directory of the tree to sync, or smb://server/share/path (the service "
            "account comes from [smb] in the config or ENCLAVE_SMB__*)."
        ),
    ],
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
    cancel_on_interrupt: Annotated[
        bool,
        typer.Option(
            "--cancel-on-interrupt",
            help="When the sync was handed to the UI process: Ctrl-C cancels it there "
            "(default: Ctrl-C detaches and the sync goes on).",
        ),
    ] = False,
) -> None:
    """Sync PATH (a directory or smb://server/share/path) into the index as source NAME: only
    new/changed files are parsed and embedded; permission-only changes rewrite payloads.

    While the UI process owns the embedded index, the sync is handed to it and followed here."""
    from core.errors import StoreLockedError
    from ingest.sync.run import run_sync
    from policies.access import AccessRules

    interrupted = "interrupted: the next `ingest sync` resumes and repairs where this one stopped"
    options = {"retry_failed": retry_failed, "force": full, "allow_empty_root": allow_empty_root}
    with cli.errors(as_json=as_json, on_interrupt=interrupted):
        settings = cli.settings(config)
        warning = AccessRules.load(settings.access_rules).warning
        if warning:
            cli.warn(warning)
        bar = _RichProgress() if not as_json and err.is_terminal else None
        with bar.progress if bar is not None else nullcontext():
            try:
                data = run_sync(
                    settings,
                    path,
                    source,
                    workers,
                    bar,
                    retry_failed=retry_failed,
                    force=full,
                    allow_empty_root=allow_empty_root,
                    actor=cli.cli_actor(),
                ).as_dict()
            except StoreLockedError as exc:
                request = {**options, "workers": workers}
                data = _hand_off(settings, exc, path, source, request, bar, cancel_on_interrupt)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    _print_summary(data)


def _hand_off(
    settings: Any,
    locked: Exception,
    path: str,
    source: str,
    options: dict[str, Any],
    bar: _RichProgress | None,
    cancel_on_interrupt: bool,
) -> dict[str, Any]:
    """The store is held: if by its live owner (the UI), run the sync there and follow it."""
    import socket

    from ingest.sources import is_smb
    from ingest.sync import handoff
    from ingest.sync.lock import store_identity
    from ingest.sync.run import SyncProgress, check_root, check_source_name
    from ingest.sync.state import open_state

    engine = open_state(settings.db_url)
    identity = store_identity(settings)
    owner = handoff.live_owner(engine, identity)
    holder = getattr(locked, "holder_pid", None)
    if owner is None or owner.host != socket.gethostname() or holder not in (None, owner.pid):
        raise locked
    root = path if is_smb(path) else str(check_root(Path(path)))
    request_id = handoff.submit(engine, identity, check_source_name(source), root, options)
    err.print(
        f"the UI process (pid {owner.pid}) owns the index: the sync runs there (request "
        f"{request_id}) and is followed here. Ctrl-C "
        + ("cancels it." if cancel_on_interrupt else "detaches (the sync goes on there).")
    )

    def progress(data: dict[str, Any]) -> None:
        if bar is not None:
            bar(SyncProgress(**data))

    try:
        return handoff.follow(engine, identity, request_id, progress)
    except KeyboardInterrupt:
        if not cancel_on_interrupt:
            err.print(
                f"detached: the sync (request {request_id}) goes on in the UI process; "
                "`ingest status` shows when it ends"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        err.print("cancelling the sync in the UI process…")
        handoff.request_cancel(engine, request_id)
        return handoff.follow(engine, identity, request_id, progress)


def _print_summary(data: dict[str, Any]) -> None:
    out = cli.out
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
    for issue in data.get("unlistable", [])[:20]:
        out.print(
            f"  not listed: {issue['path']}  [{issue['code']}] {issue['reason']}", markup=False
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
def worker(
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            max=256,
            help="Worker processes, each with its own model (default ingest.worker_processes).",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Worker name in the broker (default: ingest@<host>)."),
    ] = None,
    loglevel: Annotated[
        str, typer.Option("--loglevel", help="Celery log level (debug, info, warning).")
    ] = "info",
    config: ConfigOpt = None,
) -> None:
    """Run a distributed ingest worker: parse, chunk and embed files `ingest sync` sends through
    the broker (ingest.broker_url). Runs until stopped (SIGTERM finishes the current batch)."""
    import os
    import socket

    with cli.errors():
        settings = cli.settings(config)
        from ingest.distributed.app import make_app
        from ingest.distributed.pool import redacted
        from ingest.distributed.worker import configure

        celery_app = make_app(settings.ingest)  # refuses a config without a broker
        assert settings.ingest.broker_url is not None
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        configure(settings)
        count = processes or settings.ingest.worker_processes
        hostname = name or f"ingest@{socket.gethostname()}"
        err.print(
            f"ingest worker {hostname}: {count} process(es), queue {settings.ingest.queue}, "
            f"broker {redacted(settings.ingest.broker_url.get_secret_value())}"
        )
        celery_app.worker_main(
            [
                "worker",
                "--pool=prefork",
                f"--concurrency={count}",
                f"--hostname={hostname}",
                f"--queues={settings.ingest.queue}",
                f"--loglevel={loglevel}",
                "--prefetch-multiplier=1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )


@app.command()
def status(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Per source: files by state, chunks, the last sync and recent errors."""
    from ingest.sync.status import collect_status

    with cli.errors(as_json=as_json):
        sources = collect_status(cli.settings(config))
    if as_json:
        print(json.dumps({"sources": [s.as_dict() for s in sources]}, indent=2))
        return
    out = cli.out
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


@app.command("prepare-model")
def prepare_model(
    into: Annotated[
        Path | None,
        typer.Option(
            "--into",
            help="where to put the export (default: the installation's share/enclave/models)",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Export the configured embedding model for its ONNX backend once, at install time
    (deploy/install.sh runs it); without it the first sync exports into the data directory."""
    from ingest.encoding.sentence_transformer import INSTALLED_MODELS_DIR, prepare_export

    with cli.errors():
        settings = cli.settings(config)
        where = prepare_export(settings.embedding, into or INSTALLED_MODELS_DIR)
    cli.out.print(f"embedding model ready for backend {settings.embedding.backend}: {where}")


@app.command("migrate-index")
def migrate_index_command(
    to_url: Annotated[
        str | None, typer.Option("--to-url", help="Qdrant server URL, e.g. http://qdrant:6333")
    ] = None,
    to_path: Annotated[
        Path | None,
        typer.Option("--to-path", help="Directory for qdrant-client's local mode (trials, tests)"),
    ] = None,
    api_key_file: Annotated[
        Path | None, typer.Option("--api-key-file", help="File holding the target's API key")
    ] = None,
    collection: Annotated[
        str | None, typer.Option("--collection", help="Target collection (default: the same)")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=10000)] = 256,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted copy into this target")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a target that already holds points")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Copy the configured index (vectors + payloads) to a Qdrant server, without re-embedding."""
    from ingest.index import open_index
    from ingest.index.migrate import checkpoint_path, describe, migrate_index, target_settings

    with cli.errors():
        settings = cli.settings(config)
        target_cfg = target_settings(
            settings,
            to_url=to_url,
            to_path=to_path,
            api_key_file=api_key_file,
            collection=collection,
        )
        source_name, target_name = describe(settings), describe(target_cfg)
        if source_name == target_name:
            raise SameIndexError(f"the target {target_name} is the configured index itself")
        with closing(open_index(settings)) as source, closing(open_index(target_cfg)) as target:
            total = source.count()
            with Progress(
                TextColumn("[bold]migrating index"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as progress:
                task = progress.add_task("points", total=total)
                result = migrate_index(
                    source,
                    target,
                    batch_size=batch_size,
                    force=force,
                    resume=resume,
                    checkpoint_file=checkpoint_path(settings.data_dir, target_name),
                    target_name=target_name,
                    on_batch=lambda n: progress.advance(task, n),
                )
    err.print(
        f"{source_name} -> {target_name}: {result.copied} points copied"
        + (f", {result.skipped} already there (resumed)" if result.skipped else "")
        + f"; target holds {result.target_points} of the source's {result.source_points}"
    )
    if not result.complete:
        err.print("[red]the target holds fewer points than the source[/red]")
        raise typer.Exit(1)
    if result.target_points > result.source_points:
        err.print(
            f"[yellow]note[/yellow] the target holds {result.target_points - result.source_points}"
            " points that are not in the source (it was not empty: --force)"
        )
    err.print(
        'Next: set index.backend = "qdrant" and index.qdrant_url in the config (docs/deploy.md).'
    )


if __name__ == "__main__":
    app()
