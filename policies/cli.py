"""``policies``: accounts, licence acceptance, audit log and access checks.

Every command takes ``--config FILE`` (else ``$ENCLAVE_CONFIG``). Errors print ``[code]
message`` and exit 2; ``audit verify`` exits 1 when the chain is broken.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from policies.dbcopy import db_app
from policies.errors import AccessDeniedError, ConfigError, EnclaveError
from policies.identity import Principal
from policies.service import PolicyService
from policies.settings import load_settings

app = typer.Typer(
    help="Enclave policies: accounts, licences, audit log, access rules.", no_args_is_help=True
)
users_app = typer.Typer(
    help="Local accounts (sign-in for the embedded default).", no_args_is_help=True
)
licence_app = typer.Typer(help="Model licence acceptance and status.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(licence_app, name="licence")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")  # `policies db copy`: SQLite -> PostgreSQL (deploy)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
ConfigOpt = typer.Option(None, "--config", help="TOML config file (else $ENCLAVE_CONFIG).")
F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EnclaveError as exc:
            err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _service(config: Path | None) -> PolicyService:
    svc = PolicyService.from_settings(load_settings(config))
    if svc.rules.warning:
        err.print(f"[yellow]warning: {escape(svc.rules.warning)}[/yellow]", highlight=False)
    return svc


def _principal(svc: PolicyService, user: str) -> Principal:
    principal = svc.resolve_user(user)
    if principal is None:
        raise AccessDeniedError(
            f"user '{user}' is not in the directory (or is disabled)"
            + (f": {svc.directory.source}" if svc.directory.source else ": no directory file set"),
            code="policy.unknown_user",
        )
    return principal


def _admin_event(svc: PolicyService, action: str, **details: Any) -> None:
    svc.audit.append(
        "admin_change",
        user_id=f"cli:{getpass.getuser()}",
        policy_version=svc.version,
        details={"action": action, **details},
    )


def _parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"--{name} must be an ISO date or time, e.g. 2026-01-31 "
            f"or 2026-01-31T12:00, got {value!r}"
        ) from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


# users ------------------------------------------------------------------------------------
PasswordOpt = typer.Option(
    ...,
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="New password (prompted when omitted).",
)


@users_app.command("add")
@handle_errors
def users_add(name: str, password: str = PasswordOpt, config: Path | None = ConfigOpt) -> None:
    """Create a local account; its groups and roles come from the directory entry NAME."""
    svc = _service(config)
    svc.accounts.create(name, password)
    _admin_event(svc, "users.add", target=name)
    out.print(f"account '{name}' created")
    if svc.directory.entry(name) is None:
        err.print(
            f"[yellow]warning: '{name}' is not in the directory: it signs in with no "
            "groups and reads nothing[/yellow]"
        )


@users_app.command("disable")
@handle_errors
def users_disable(name: str, config: Path | None = ConfigOpt) -> None:
    svc = _service(config)
    svc.accounts.disable(name)
    _admin_event(svc, "users.disable", target=name)
    out.print(f"account '{name}' disabled")


@users_app.command("enable")
@handle_errors
def users_enable(name: str, config: Path | None = ConfigOpt) -> None:
    svc = _service(config)
    svc.accounts.enable(name)
    _admin_event(svc, "users.enable", target=name)
    out.print(f"account '{name}' enabled")


@users_app.command("reset-password")
@handle_errors
def users_reset(name: str, password: str = PasswordOpt, config: Path | None = ConfigOpt) -> None:
    svc = _service(config)
    svc.accounts.reset_password(name, password)
    _admin_event(svc, "users.reset_password", target=name)
    out.print(f"password of '{name}' reset")


@users_app.command("list")
@handle_errors
def users_list(
    as_json: bool = typer.Option(False, "--json"), config: Path | None = ConfigOpt
) -> None:
    svc = _service(config)
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


# licence ----------------------------------------------------------------------------------
@licence_app.command("accept")
@handle_errors
def licence_accept(
    model: str = typer.Option(..., "--model", help="Model name from the models registry."),
    user: str = typer.Option(..., "--user", help="Admin accepting (from the directory)."),
    statement: str = typer.Option(
        ..., "--statement", help="e.g. 'Below 700 million monthly active users'."
    ),
    meta_licence_ref: str | None = typer.Option(
        None, "--meta-licence-ref", help="Reference of a licence granted by Meta."
    ),
    config: Path | None = ConfigOpt,
) -> None:
    """Record the acceptance of a model's licence (audited as licence_acceptance)."""
    svc = _service(config)
    acc = svc.licence.accept(model, _principal(svc, user), statement, meta_licence_ref)
    out.print(
        f"licence {acc.licence_id} accepted for {acc.model_name} by {acc.accepted_by} "
        f"at {acc.accepted_at:%Y-%m-%d %H:%M:%S} UTC (audit record {acc.audit_id})"
    )


@licence_app.command("status")
@handle_errors
def licence_status(
    as_json: bool = typer.Option(False, "--json"), config: Path | None = ConfigOpt
) -> None:
    svc = _service(config)
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


# audit ------------------------------------------------------------------------------------
@audit_app.command("verify")
@handle_errors
def audit_verify(
    as_json: bool = typer.Option(False, "--json"), config: Path | None = ConfigOpt
) -> None:
    """Walk the hash chain; exit 0 when intact, 1 naming the first bad record."""
    svc = _service(config)
    with err.status("verifying the audit chain"):
        result = svc.audit.verify()
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
    elif result.ok:
        out.print(f"[green]{result.message}[/green] (head {result.head_id})")
    else:
        out.print(
            f"[red]TAMPERED: first bad record {result.first_bad_id}: "
            f"{escape(result.message)} {escape('[' + result.reason_code + ']')}[/red]",
            highlight=False,
        )
    raise typer.Exit(0 if result.ok else 1)


@audit_app.command("export")
@handle_errors
def audit_export(
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv"),
    since: str | None = typer.Option(None, "--since", help="ISO date/time (inclusive)."),
    until: str | None = typer.Option(None, "--until", help="ISO date/time (exclusive)."),
    out_file: Path | None = typer.Option(None, "--out", help="File (else stdout)."),
    config: Path | None = ConfigOpt,
) -> None:
    """Export records plus a signed checkpoint (jsonl: last line; csv: FILE.checkpoint.json)."""
    from policies.audit_retention import checkpoint_dict, export

    svc = _service(config)
    start, end = _parse_time(since, "since"), _parse_time(until, "until")
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


@audit_app.command("verify-export")
@handle_errors
def audit_verify_export(
    file: Path = typer.Argument(..., help="A JSON-lines export (policies audit export)."),
    public_key: Path | None = typer.Option(
        None, "--public-key", help="PEM public key you trust (from an earlier checkpoint)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check an export off-host, without the database: exit 0 intact, 1 otherwise."""
    from policies.audit_offline import verify_export

    trusted = public_key.read_text(encoding="ascii") if public_key else None
    with file.open(encoding="utf-8") as fh:
        result = verify_export(fh, trusted)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
    elif result.ok:
        out.print(f"[green]{escape(result.message)}[/green]")
    else:
        out.print(
            f"[red]BROKEN at line {result.first_bad_line}: {escape(result.message)} "
            f"{escape('[' + result.reason_code + ']')}[/red]"
        )
    raise typer.Exit(0 if result.ok else 1)


@audit_app.command("checkpoint")
@handle_errors
def audit_checkpoint(config: Path | None = ConfigOpt) -> None:
    """Sign and store a checkpoint of the chain head; prints it (keep a copy off-host)."""
    from policies.audit_retention import checkpoint_dict, create_checkpoint

    svc = _service(config)
    cp = create_checkpoint(svc.audit, svc.signing_key)
    out.print_json(json.dumps(checkpoint_dict(cp)))


@audit_app.command("purge")
@handle_errors
def audit_purge(
    older_than_days: int | None = typer.Option(
        None, "--older-than-days", help="Default: policy.retention_days (purge is off if unset)."
    ),
    allow_below_floor: bool = typer.Option(
        False, "--allow-below-floor", help="Permit fewer than 183 days (EU AI Act Art. 26(6))."
    ),
    config: Path | None = ConfigOpt,
) -> None:
    """Delete records older than N days, anchored by a signed checkpoint."""
    from policies.audit_retention import purge_older_than

    svc = _service(config)
    days = older_than_days or svc.settings.policy.retention_days
    if days is None:
        raise ConfigError(
            "no retention period: pass --older-than-days or set policy.retention_days",
            code="audit.retention_unset",
        )
    res = purge_older_than(svc.audit, svc.signing_key, days, allow_below_floor=allow_below_floor)
    _admin_event(
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


@audit_app.command("forget")
@handle_errors
def audit_forget(
    user: str = typer.Option(..., "--user", help="User id to unlink from the audit log."),
    config: Path | None = ConfigOpt,
) -> None:
    """Erasure request: delete the link between USER and their audit pseudonym."""
    svc = _service(config)
    existed = svc.forget_user(user)
    _admin_event(svc, "audit.forget_user", had_pseudonym=existed)
    out.print(f"{'unlinked' if existed else 'no pseudonym for'} '{user}'")


# access -----------------------------------------------------------------------------------
@app.command("check-access")
@handle_errors
def check_access(
    path: str = typer.Argument(..., help="File path relative to its source root."),
    user: str = typer.Option(..., "--user"),
    source: str = typer.Option("default", "--source", help="Name of the synced source."),
    config: Path | None = ConfigOpt,
) -> None:
    """Explain which rule decides PATH and whether USER may read it (exit 1 if not)."""
    svc = _service(config)
    principal = _principal(svc, user)
    match = svc.rules.match(source, path)
    out.print(match.explain(), markup=False, highlight=False)
    if match.classification:
        out.print(f"classification: {match.classification}")
    shared = sorted(set(match.groups) & principal.groups)
    groups = escape(", ".join(sorted(principal.groups)) or "none")
    user = escape(user)
    if shared:
        out.print(
            f"[green]{user} (groups: {groups}) CAN read it via {escape(', '.join(shared))}[/green]"
        )
        return
    out.print(f"[red]{user} (groups: {groups}) CANNOT read it[/red]")
    raise typer.Exit(1)
