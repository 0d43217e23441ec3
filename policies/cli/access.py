"""``policies check-access``: explain whether a user may read a path, and why.

The decision is the one the sync stamped on the file's chunks (:func:`policies.readers.decide`
on the permissions recorded at the last sync, :mod:`policies.aclstore`, and the access rules as
they are now): which rule, which ACL entry or POSIX entry, which of the user's groups.
"""

from __future__ import annotations

import typer
from rich.markup import escape

from core import cli
from core.cli import ConfigOpt, out
from core.db import session_scope
from core.errors import EXIT_DENIED
from policies import aclstore, ntacl
from policies.cli.common import principal, service
from policies.readers import Decision, NtFacts, PosixFacts, can_read, decide, nt_policy_for
from policies.service import PolicyService


@cli.command
def check_access(
    path: str = typer.Argument(..., help="File path relative to its source root."),
    user: str = typer.Option(..., "--user"),
    source: str = typer.Option("default", "--source", help="Name of the synced source."),
    config: ConfigOpt = None,
) -> None:
    """Explain which rule or ACL entry decides PATH and whether USER may read it (exit 4 if
    not)."""
    svc = service(config)
    who = principal(svc, user)
    token = who.access_ids
    with session_scope(svc.engine) as s:
        stored = aclstore.get(s, source, path.replace("\\", "/").strip("/"))
    facts = stored[0] if stored else None
    match = svc.rules.match(source, path)
    decision = decide(match, facts, svc.directory, nt_policy_for(svc.settings.smb, svc.directory))
    names = _names(svc, set(token) | set(decision.allowed) | set(decision.denied), decision)
    for line in decision.lines:
        out.print(line, markup=False, highlight=False)
    if isinstance(facts, NtFacts):
        _print_aces(facts, decision, token, names)
    elif isinstance(facts, PosixFacts):
        out.print("POSIX permissions recorded at the last sync (listed above) narrowed the rule")
    elif stored is None:
        out.print("no file permissions recorded for this path: the rules decide")
    if match.classification:
        out.print(f"classification: {match.classification}")
    user = escape(user)
    shown = escape(", ".join(sorted(names.get(g, g) for g in who.groups)) or "none")
    if decision.excluded:
        out.print(f"[red]{user} CANNOT read it: the file is never indexed[/red]")
        raise typer.Exit(EXIT_DENIED)
    if can_read(decision, token):
        via = escape(", ".join(sorted(names.get(g, g) for g in set(decision.allowed) & token)))
        out.print(f"[green]{user} (groups: {shown}) CAN read it via {via}[/green]")
        return
    denied = sorted(names.get(g, g) for g in set(decision.denied) & token)
    why = f" (denied through {escape(', '.join(denied))})" if denied else ""
    if decision.failure:
        why = f" ({escape(decision.failure)})"
    out.print(f"[red]{user} (groups: {shown}) CANNOT read it{why}[/red]")
    raise typer.Exit(EXIT_DENIED)


def _names(svc: PolicyService, ids: set[str], decision: Decision) -> dict[str, str]:
    if decision.nt is not None:
        ids = ids | {v.sid for v in decision.nt.verdicts}
    return svc.directory.display_names(ids)


def _print_aces(
    facts: NtFacts, decision: Decision, token: frozenset[str], names: dict[str, str]
) -> None:
    nt = decision.nt
    if nt is None:
        return
    out.print("NT ACL recorded at the last sync (deny entries win over any allow):")
    for v in nt.verdicts:
        holder = "  <- the user holds this SID" if v.sid in token else ""
        who = names.get(v.sid, v.sid)
        out.print(
            f"  #{v.index} {v.ace.kind:5} {who}  [{v.ace.flag_names()}]  {v.why}{holder}",
            markup=False,
            highlight=False,
        )
    sd = ntacl.parse_sd(facts.raw)
    windows = ntacl.ordered_access(sd, token)
    ours = can_read(decision, token)
    if windows != ours:
        out.print(
            "note: Windows' ordered evaluation of this ACL would "
            f"{'allow' if windows else 'deny'} the read; Enclave "
            f"{'allows' if ours else 'denies'} it (deny entries always win, administrative "
            "SIDs are no readers)",
            markup=False,
        )
