"""``policies``: accounts, licence acceptance, the audit log, access checks, database copy.

Every command follows the CLI contract of :mod:`core.cli` (one ``--config``, one error line,
one exit-code map). ``audit verify`` and ``audit verify-export`` exit 1 when the chain or the
export is broken; ``check-access`` exits 4 when the user cannot read the path.
"""

from __future__ import annotations

from core import cli
from policies.cli import access, audit, db, licence, users

app = cli.new_app("policies", "Enclave policies: accounts, licences, audit log, access rules.")
app.add_typer(users.app, name="users")
app.add_typer(licence.app, name="licence")
app.add_typer(audit.app, name="audit")
app.add_typer(db.app, name="db")
app.command("check-access")(access.check_access)

__all__ = ["app"]
