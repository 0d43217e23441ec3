"""PolicyService bundles everything and migrates its tables on first use, also when several
processes start at once on a fresh database."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from sqlalchemy import inspect

from core.db import dispose_engines, make_engine
from core.settings import load_settings
from policies.identity import Principal
from policies.service import PolicyService


def _start(config: str, barrier: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    svc = PolicyService.from_settings(load_settings(config))
    svc.audit.append("sync_run", user_id="worker", details={"ok": True})


def test_first_use_migrates_once_across_processes(db_config: Path) -> None:
    dispose_engines()
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(6)
    procs = [ctx.Process(target=_start, args=(str(db_config), barrier)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * 6
    settings = load_settings(db_config)
    tables = set(inspect(make_engine(settings.db_url)).get_table_names())
    assert {
        "audit_records",
        "audit_head",
        "policy_accounts",
        "usage_counters",
        "licence_acceptances",
        "audit_checkpoints",
        "audit_user_keys",
        "alembic_version_policies",
    } <= tables
    svc = PolicyService.from_settings(settings)
    assert svc.audit.count() == 6 and svc.audit.verify().ok


def test_bundle(settings: object, tmp_path: Path) -> None:
    svc = PolicyService.from_settings(settings)  # type: ignore[arg-type]
    alice = svc.resolve_user("alice")
    assert alice == Principal("alice", frozenset({"hr", "everyone"}), frozenset({"employee"}))
    assert svc.resolve_user("dave") is None
    assert svc.rules.groups_for("s", "hr/x.txt") == ["hr"]
    assert svc.gate.check_request(alice, "Where is the handbook?").allowed
    assert (
        svc.licence.check_servable("nope", None, None).reason_code == "licence.model_not_approved"
    )
    assert svc.mask_prompt("mail bo@example.se") == "mail [EMAIL]"
    assert svc.audit_key_file == tmp_path / "data" / "keys" / "audit-hmac.key"
    assert svc.version.split("+")[1] and len(svc.version.split("+")[1]) == 16


def test_prompt_masking_can_be_switched_off(config_file: Path) -> None:
    settings = load_settings(
        config_file, policy={"mask_pii_in_prompts": False, "mask_pii_in_audit": False}
    )
    svc = PolicyService.from_settings(settings)
    assert svc.mask_prompt("mail bo@example.se") == "mail bo@example.se"
    svc.audit.append("ask", principal=Principal("x"), question="mail bo@example.se")
    assert svc.audit.records()[0]["question"] == "mail bo@example.se"
