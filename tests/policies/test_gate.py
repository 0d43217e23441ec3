"""The usage gate on real databases: roles, size, acceptable use, rate limit, quotas."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import load_settings
from policies.decision import Decision
from policies.gate import UsageGate
from policies.identity import Principal
from policies.service import PolicyService
from policies.usage import UsagePolicy

ALICE = Principal("alice", frozenset({"hr", "everyone"}))
USAGE = """\
allowed_roles: [employee, admin]
max_input_chars: 100
limits:
  default: {requests_per_day: 5, tokens_per_day: 1000, requests_per_minute: 3}
  groups:
    research: {requests_per_day: 50, tokens_per_day: null}
    hr: {requests_per_day: 8}
  users:
    mallory: {requests_per_day: 1}
acceptable_use:
  categories:
    - id: test_cat
      description: test category
      patterns: ['\\bforbidden thing\\b']
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 10, 0, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _svc(db_config: Path, tmp_path: Path, usage: str = USAGE) -> PolicyService:
    f = tmp_path / "usage.yaml"
    f.write_text(usage)
    return PolicyService.from_settings(load_settings(db_config, policy={"usage_file": f}))


def _gate(svc: PolicyService, clock: Clock) -> UsageGate:
    return UsageGate(svc.usage, svc.engine, svc.policy_version, clock=clock)


def test_limits_user_override_then_most_generous_group_then_default(tmp_path: Path) -> None:
    f = tmp_path / "u.yaml"
    f.write_text(USAGE)
    pol = UsagePolicy.load(f)
    assert pol.limits_for(Principal("x", frozenset())).requests_per_day == 5
    assert pol.limits_for(Principal("x", frozenset({"hr"}))).requests_per_day == 8
    both = pol.limits_for(Principal("x", frozenset({"hr", "research"})))
    assert both.requests_per_day == 50 and both.tokens_per_day is None  # null = unlimited
    assert both.requests_per_minute == 3  # no group sets it: default
    assert pol.limits_for(Principal("mallory", frozenset({"research"}))).requests_per_day == 1


def test_role_size_and_empty_refusals(db_config: Path, tmp_path: Path) -> None:
    svc = _svc(db_config, tmp_path)
    d = svc.gate.check_request(Principal("carol", frozenset(), frozenset({"compliance"})), "hi")
    assert (d.allowed, d.reason_code) == (False, "usage.role_not_allowed")
    d = svc.gate.check_request(ALICE, "x" * 101)
    assert d.reason_code == "usage.input_too_large" and d.details["limit"] == 100
    assert "101" in d.message
    assert svc.gate.check_request(ALICE, "   ").reason_code == "usage.empty_input"
    assert d.policy_version == svc.version


def test_rate_limit_and_daily_quota_with_reset_times(db_config: Path, tmp_path: Path) -> None:
    svc = _svc(db_config, tmp_path)
    clock = Clock()
    gate = _gate(svc, clock)
    bob = Principal("bob", frozenset())
    assert [gate.check_request(bob, "q").allowed for _ in range(3)] == [True] * 3
    limited = gate.check_request(bob, "q")
    assert limited.reason_code == "usage.rate_limited"
    assert limited.details["resets_at"] == "2026-03-02T10:01:00+00:00"
    assert "55 s" in limited.message
    clock.now += timedelta(minutes=1)
    assert gate.check_request(bob, "q").allowed and gate.check_request(bob, "q").allowed
    clock.now += timedelta(minutes=1)
    quota = gate.check_request(bob, "q")  # 5 counted today: the 6th is refused
    assert quota.reason_code == "usage.quota_requests"
    assert quota.details["resets_at"] == "2026-03-03T00:00:00+00:00"
    clock.now = datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC)
    assert gate.check_request(bob, "q").allowed


def test_token_quota(db_config: Path, tmp_path: Path) -> None:
    svc = _svc(db_config, tmp_path)
    gate = _gate(svc, Clock())
    bob = Principal("bob", frozenset())
    assert gate.check_request(bob, "q").allowed
    gate.record_usage(bob, 600)
    assert gate.check_request(bob, "q").allowed
    gate.record_usage(bob, 400)
    refused = gate.check_request(bob, "q")
    assert refused.reason_code == "usage.quota_tokens" and refused.details["used"] == 1000
    assert gate.usage_today(bob)["tokens"] == 1000


def test_concurrent_requests_never_exceed_the_quota(db_config: Path, tmp_path: Path) -> None:
    svc = _svc(
        db_config, tmp_path, USAGE.replace("requests_per_minute: 3", "requests_per_minute: 100")
    )
    gate = _gate(svc, Clock())
    results: list[Decision] = []
    lock = threading.Lock()

    def worker() -> None:
        d = gate.check_request(Principal("eve", frozenset()), "q")
        with lock:
            results.append(d)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(d.allowed for d in results) == 5
    assert {d.reason_code for d in results if not d.allowed} == {"usage.quota_requests"}


def test_acceptable_use_refusal_is_audited_with_category(db_config: Path, tmp_path: Path) -> None:
    svc = _svc(db_config, tmp_path)
    d = svc.gate.check_request(ALICE, "please explain the Forbidden   Thing to me")
    assert (d.allowed, d.reason_code, d.details["category"]) == (
        False,
        "usage.acceptable_use",
        "test_cat",
    )
    rid = svc.audit.append(
        "refusal",
        principal=ALICE,
        question="explain the forbidden thing",
        decisions=[d],
        policy_version=d.policy_version,
    )
    rec = svc.audit.records(event_type="refusal")[0]
    assert rec["id"] == rid and rec["decisions"][0]["details"]["category"] == "test_cat"
    answer = svc.gate.check_response(ALICE, "here is the forbidden thing")
    assert answer.reason_code == "usage.acceptable_use_response"
    assert svc.gate.check_response(ALICE, "a harmless answer").allowed


def test_policy_version_changes_with_policy_files(tmp_path: Path) -> None:
    from tests.policies.conftest import write_config

    cfg = write_config(tmp_path)
    a = _svc(cfg, tmp_path)
    b = _svc(cfg, tmp_path, USAGE.replace("max_input_chars: 100", "max_input_chars: 200"))
    assert a.version != b.version and a.version.startswith("0.1.0+")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("limits: {default: {requests_per_hour: 3}}", "limits.default"),
        ("allowed_roles: [boss]", "allowed_roles"),
        ("acceptable_use: {categories: [{id: x, patterns: ['(']}]}", "pattern"),
        ("colour: blue", "top-level"),
    ],
)
def test_invalid_usage_file(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "u.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        UsagePolicy.load(f)


def test_documented_usage_example(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "policies.md").read_text()
    block = doc.split("## Usage policy file", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    f = tmp_path / "u.yaml"
    f.write_text(block)
    pol = UsagePolicy.load(f)
    lim = pol.limits_for(Principal("x", frozenset({"research", "interns"})))
    assert (lim.tokens_per_day, lim.requests_per_day) == (2_000_000, 50)
    assert pol.limits_for(Principal("mallory", frozenset({"interns"}))).requests_per_day == 10
    hit = pol.screen("help me build a bomb")
    assert hit is not None and hit.category.id == "violence_terrorism"
