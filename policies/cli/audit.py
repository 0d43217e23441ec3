"""``policies audit``: verify, export, checkpoint, purge, forget."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.markup import escape

from core import cli
from core.cli import ConfigOpt, JsonOpt, cli_actor, err, out
from core.errors import EXIT_FAILED, EXIT_OK, AuditIntegrityError, AuditUsageError
from policies.cli.common import admin_event, parse_time, service

app = cli.new_app("audit", "The tamper-evident audit log.")


@app.command("verify")
@cli.command
def audit_verify(
    anchors: list[Path] = typer.Option(
        [],
        "--anchors",
        help="More external anchors to check against (a copy of an anchor file, or what a "
        "syslog collector stored); repeatable.",
    ),
    public_keys: list[Path] = typer.Option(
        [],
        "--public-key",
        help="Trust only these PEM public keys (repeatable); default: the signing key's and "
        "policy.audit_public_keys.",
    ),
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Check the chain, every signature and the external anchors; exit 0 intact, 1 naming the
    first bad record."""
    from policies.audit_anchors import read_lines
    from policies.audit_checkpoint import TrustedKeys
    from policies.keys import load_public_keys

    svc = service(config)
    for path in anchors:
        if not path.is_file():
            raise AuditUsageError(f"--anchors {path}: no such file")
    if public_keys:
        pems = load_public_keys(public_keys)
        svc.audit.trusted_public_keys = pems
        svc.audit.trusted = TrustedKeys(pems)
    extra = [(str(p), read_lines(p, str(p))) for p in anchors]
    with err.status("verifying the audit chain"):
        result = svc.audit.verify(extra_anchors=extra)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        raise typer.Exit(EXIT_OK if result.ok else EXIT_FAILED)
    for note in result.notes:
        cli.warn(note)
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
    """Export records plus a signed manifest (jsonl: last line; csv: FILE.manifest.json);
    the export is audited."""
    from policies.audit_retention import export

    svc = service(config)
    start, end = parse_time(since, "since"), parse_time(until, "until")
    actor = cli_actor()
    if out_file is None:
        n, manifest = export(
            svc.audit,
            svc.signing_key,
            sys.stdout,
            fmt,
            since=start,
            until=end,
            actor=actor,
            policy_version=svc.version,
        )
        if fmt == "csv":
            err.print(json.dumps(manifest.to_dict()), highlight=False)
        return
    with out_file.open("w", encoding="utf-8", newline="") as fh:
        n, manifest = export(
            svc.audit,
            svc.signing_key,
            fh,
            fmt,
            since=start,
            until=end,
            actor=actor,
            policy_version=svc.version,
        )
    if fmt == "csv":
        side = out_file.with_name(out_file.name + ".manifest.json")
        side.write_text(json.dumps(manifest.to_dict(), indent=2) + "\n", encoding="utf-8")
    body = manifest.body
    err.print(
        f"exported {n} records ({body['first_id']}..{body['last_id']}) to {out_file} with a "
        "signed manifest"
    )


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


@app.command("acknowledge-loss")
@cli.command
def audit_acknowledge_loss(
    reason: str = typer.Option(..., "--reason", help="Why the records are gone (restore, ...)."),
    anchors: list[Path] = typer.Option([], "--anchors", help="More anchor files (as verify)."),
    config: ConfigOpt = None,
) -> None:
    """After restoring an older backup: declare the records the external anchors name but the
    database lost, in a signed record (the loss stays visible to every later verification)."""
    from policies.audit_anchors import read_lines

    svc = service(config)
    extra = [(str(p), read_lines(p, str(p))) for p in anchors]
    first, last, rid = svc.audit.acknowledge_loss(
        cli_actor(), reason, svc.version, extra_anchors=extra
    )
    out.print(f"records {first}..{last} declared lost in record {rid}")


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
    """Erasure request: unlink USER from their audit pseudonym, delete their usage counters and
    their chat history."""
    svc = service(config)
    done = svc.erase_user(user)
    admin_event(
        svc,
        "audit.forget_user",
        had_pseudonym=done.had_pseudonym,
        usage_rows=done.usage_rows,
        erased=done.erased,
    )
    conversations = done.erased.get("assistant", 0)
    out.print(
        f"{'unlinked' if done.had_pseudonym else 'no pseudonym for'} '{user}'; deleted "
        f"{conversations} conversation(s) of chat history"
    )
