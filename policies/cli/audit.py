"""``policies audit``: verify, export, checkpoint, purge, forget."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.markup import escape

from core import cli
from core.cli import ConfigOpt, JsonOpt, err, out
from core.errors import EXIT_FAILED, EXIT_OK, AuditIntegrityError, AuditUsageError
from policies.cli.common import admin_event, parse_time, service

app = cli.new_app("audit", "The tamper-evident audit log.")


@app.command("verify")
@cli.command
def audit_verify(as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Walk the hash chain; exit 0 when intact, 1 naming the first bad record."""
    svc = service(config)
    with err.status("verifying the audit chain"):
        result = svc.audit.verify()
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)
    if not result.ok:
        raise AuditIntegrityError(
            f"TAMPERED: first bad record {result.first_bad_id}: {result.message} "
            f"[{result.reason_code}]"
        )
    out.print(f"[green]{escape(result.message)}[/green] (head {result.head_id})")


@app.command("export")
@cli.command
def audit_export(
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv"),
    since: str | None = typer.Option(None, "--since", help="ISO date/time (inclusive)."),
    until: str | None = typer.Option(None, "--until", help="ISO date/time (exclusive)."),
    out_file: Path | None = typer.Option(None, "--out", help="File (else stdout)."),
    config: ConfigOpt = None,
) -> None:
    """Export records plus a signed checkpoint (jsonl: last line; csv: FILE.checkpoint.json)."""
    from policies.audit_checkpoint import checkpoint_dict
    from policies.audit_retention import export

    svc = service(config)
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if out_file is None:
        n, cp = export(svc.audit, svc.signing_key, sys.stdout, fmt, since=start, until=end)
        if fmt == "csv":
            err.print(json.dumps(checkpoint_dict(cp)), highlight=False)
        return
    with out_file.open("w", encoding="utf-8", newline="") as fh:
        n, cp = export(svc.audit, svc.signing_key, fh, fmt, since=start, until=end)
    if fmt == "csv":
        side = out_file.with_name(out_file.name + ".checkpoint.json")
        side.write_text(json.dumps(checkpoint_dict(cp), indent=2) + "\n", encoding="utf-8")
    err.print(f"exported {n} records to {out_file}; checkpoint {cp.id} at record {cp.head_id}")


@app.command("verify-export")
@cli.command
def audit_verify_export(
    file: Path = typer.Argument(..., help="A JSON-lines export (policies audit export)."),
    public_key: Path | None = typer.Option(
        None, "--public-key", help="PEM public key you trust (from an earlier checkpoint)."
    ),
    as_json: JsonOpt = False,
) -> None:
    """Check an export off-host, without the database: exit 0 intact, 1 otherwise."""
    from policies.audit_offline import verify_export

    trusted = public_key.read_text(encoding="ascii") if public_key else None
    with file.open(encoding="utf-8") as fh:
        result = verify_export(fh, trusted)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)
    if not result.ok:
        raise AuditIntegrityError(
            f"BROKEN at line {result.first_bad_line}: {result.message} [{result.reason_code}]"
        )
    out.print(f"[green]{escape(result.message)}[/green]")


@app.command("checkpoint")
@cli.command
def audit_checkpoint(config: ConfigOpt = None) -> None:
    """Sign and store a checkpoint of the chain head; prints it (keep a copy off-host)."""
    from policies.audit_checkpoint import checkpoint_dict
    from policies.audit_retention import create_checkpoint

    svc = service(config)
    cp = create_checkpoint(svc.audit, svc.signing_key)
    out.print_json(json.dumps(checkpoint_dict(cp)))


@app.command("purge")
@cli.command
def audit_purge(
    older_than_days: int | None = typer.Option(
        None, "--older-than-days", help="Default: policy.retention_days (purge is off if unset)."
    ),
    allow_below_floor: bool = typer.Option(
        False, "--allow-below-floor", help="Permit fewer than 183 days (EU AI Act Art. 26(6))."
    ),
    config: ConfigOpt = None,
) -> None:
    """Delete records older than N days, anchored by a signed checkpoint."""
    from policies.audit_retention import purge_older_than

    svc = service(config)
    days = older_than_days or svc.settings.policy.retention_days
    if days is None:
        raise AuditUsageError(
            "no retention period: pass --older-than-days or set policy.retention_days",
            code="audit.retention_unset",
        )
    res = purge_older_than(svc.audit, svc.signing_key, days, allow_below_floor=allow_below_floor)
    admin_event(
        svc,
        "audit.purge",
        days=days,
        deleted=res.deleted,
        through_id=res.through_id,
        checkpoint_id=res.checkpoint_id,
    )
    out.print(
        f"purged {res.deleted} records older than {res.cutoff}"
        + (
            f" (through record {res.through_id}, checkpoint {res.checkpoint_id})"
            if res.through_id
            else ""
        )
    )


@app.command("forget")
@cli.command
def audit_forget(
    user: str = typer.Option(..., "--user", help="User id to unlink from the audit log."),
    config: ConfigOpt = None,
) -> None:
    """Erasure request: delete the link between USER and their audit pseudonym."""
    svc = service(config)
    existed = svc.forget_user(user)
    admin_event(svc, "audit.forget_user", had_pseudonym=existed)
    out.print(f"{'unlinked' if existed else 'no pseudonym for'} '{user}'")
