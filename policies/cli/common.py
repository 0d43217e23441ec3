"""What the ``policies`` commands share: the service, the acting user, admin-change events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import cli
from core.cli import cli_actor
from core.errors import UsageError
from policies.identity import Principal
from policies.service import PolicyService


def service(config: Path | None) -> PolicyService:
    svc = PolicyService.from_settings(cli.settings(config))
    if svc.rules.warning:
        cli.warn(svc.rules.warning)
    return svc


def principal(svc: PolicyService, user: str) -> Principal:
    return cli.require_user(svc.resolve_user(user), user, svc.directory.source)


def admin_event(svc: PolicyService, action: str, **details: Any) -> None:
    """Audit an administrative change made from the command line."""
    svc.audit.append(
        "admin_change",
        user_id=cli_actor(),
        policy_version=svc.version,
        details={"action": action, **details},
    )


def parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--{name} must be an ISO date or time, e.g. 2026-01-31 "
            f"or 2026-01-31T12:00, got {value!r}"
        ) from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
