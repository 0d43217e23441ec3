"""The usage gate: role, input size, acceptable use, rate limit and daily quotas.

``check_request`` runs the checks in that order and, when it allows, counts the request
(minute window and UTC day) in the same transaction that checks the limits, so concurrent
requests cannot overrun a limit. ``record_usage`` adds the tokens a request consumed (prompt +
completion); the token quota refuses new requests once the day's total reaches the limit.
Counters live in the database (``usage_counters``), so every process sees the same counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select

from policies.decision import Decision
from policies.identity import Principal
from policies.tables import UsageCounter
from policies.usage import Limits, UsagePolicy


def _insert(conn: Connection) -> Any:
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    return insert


def _bump(
    conn: Connection, user: str, period: str, bucket: str, requests: int, tokens: int
) -> tuple[int, int]:
    ins = _insert(conn)(UsageCounter).values(
        user_id=user, period=period, bucket=bucket, requests=requests, tokens=tokens
    )
    stmt = ins.on_conflict_do_update(
        index_elements=["user_id", "period", "bucket"],
        set_={"requests": UsageCounter.requests + requests, "tokens": UsageCounter.tokens + tokens},
    ).returning(UsageCounter.requests, UsageCounter.tokens)
    row = conn.execute(stmt).one()
    return int(row[0]), int(row[1])


class UsageGate:
    def __init__(
        self,
        policy: UsagePolicy,
        engine: Engine,
        version: Callable[[], str],
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.policy = policy
        self.engine = engine
        self._version = version
        self._clock = clock or (lambda: datetime.now(UTC))

    # Windows ----------------------------------------------------------------------------
    @staticmethod
    def _day(now: datetime) -> tuple[str, datetime]:
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%d"), start + timedelta(days=1)

    @staticmethod
    def _minute(now: datetime) -> tuple[str, datetime]:
        start = now.replace(second=0, microsecond=0)
        return start.strftime("%Y-%m-%dT%H:%M"), start + timedelta(minutes=1)

    def _screen(self, text: str, v: str, code: str, what: str) -> Decision | None:
        hit = self.policy.screen(text)
        if hit is None:
            return None
        message = hit.category.message or (
            f"This {what} was refused under the acceptable-use policy "
            f"({hit.category.id}: {hit.category.description})"
        )
        return Decision.refuse(code, message, v, category=hit.category.id)

    # Checks -----------------------------------------------------------------------------
    def check_request(self, principal: Principal, question: str) -> Decision:
        v = self._version()
        pol = self.policy
        if not principal.roles & pol.allowed_roles:
            return Decision.refuse(
                "usage.role_not_allowed",
                "Your role may not use the assistant. Ask an administrator for access.",
                v,
                roles=sorted(principal.roles),
                allowed=sorted(pol.allowed_roles),
            )
        if not question.strip():
            return Decision.refuse("usage.empty_input", "The question is empty.", v)
        if len(question) > pol.max_input_chars:
            return Decision.refuse(
                "usage.input_too_large",
                f"The question is {len(question)} characters long; the limit is "
                f"{pol.max_input_chars}. Shorten it and ask again.",
                v,
                size=len(question),
                limit=pol.max_input_chars,
            )
        if pol.screen_questions:
            refusal = self._screen(question, v, "usage.acceptable_use", "request")
            if refusal is not None:
                return refusal
        return self._count_request(principal, v)

    def _count_request(self, principal: Principal, v: str) -> Decision:
        limits = self.policy.limits_for(principal)
        now = self._clock()
        user = principal.user_id
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                refusal, day_req, day_tok = self._count_locked(conn, user, limits, now, v)
            except Exception:
                conn.rollback()
                raise
            if refusal is not None:
                conn.rollback()
                return refusal
            conn.commit()
        return Decision.allow(
            "usage.ok",
            v,
            "within limits",
            requests_today=day_req,
            tokens_today=day_tok,
            limits=asdict(limits),
        )

    def _count_locked(
        self, conn: Connection, user: str, limits: Limits, now: datetime, v: str
    ) -> tuple[Decision | None, int, int]:
        day, day_reset = self._day(now)
        minute, minute_reset = self._minute(now)
        day_req, day_tok = _bump(conn, user, "day", day, 0, 0)
        if limits.tokens_per_day is not None and day_tok >= limits.tokens_per_day:
            return (
                Decision.refuse(
                    "usage.quota_tokens",
                    f"You have used today's token quota ({limits.tokens_per_day}). It resets at "
                    f"{day_reset:%Y-%m-%d %H:%M} UTC.",
                    v,
                    limit=limits.tokens_per_day,
                    used=day_tok,
                    resets_at=day_reset.isoformat(),
                ),
                day_req,
                day_tok,
            )
        if limits.requests_per_day is not None and day_req + 1 > limits.requests_per_day:
            return (
                Decision.refuse(
                    "usage.quota_requests",
                    f"You have reached today's limit of {limits.requests_per_day} questions. It "
                    f"resets at {day_reset:%Y-%m-%d %H:%M} UTC.",
                    v,
                    limit=limits.requests_per_day,
                    used=day_req,
                    resets_at=day_reset.isoformat(),
                ),
                day_req,
                day_tok,
            )
        min_req, _ = _bump(conn, user, "minute", minute, 1, 0)
        if limits.requests_per_minute is not None and min_req > limits.requests_per_minute:
            wait = max(1, int((minute_reset - now).total_seconds() + 0.999))
            return (
                Decision.refuse(
                    "usage.rate_limited",
                    f"Too many questions in a minute (limit {limits.requests_per_minute}). "
                    f"Try again in {wait} s.",
                    v,
                    limit=limits.requests_per_minute,
                    resets_at=minute_reset.isoformat(),
                ),
                day_req,
                day_tok,
            )
        day_req, day_tok = _bump(conn, user, "day", day, 1, 0)
        conn.execute(
            delete(UsageCounter).where(
                UsageCounter.user_id == user,
                UsageCounter.period == "minute",
                UsageCounter.bucket < minute,
            )
        )
        return None, day_req, day_tok

    def check_response(self, principal: Principal, answer: str) -> Decision:
        v = self._version()
        if self.policy.screen_answers:
            refusal = self._screen(answer, v, "usage.acceptable_use_response", "answer")
            if refusal is not None:
                return refusal
        return Decision.allow("usage.ok", v, "answer passed the acceptable-use screen")

    def record_usage(self, principal: Principal, tokens: int) -> None:
        if tokens < 0:
            raise ValueError("tokens must be >= 0")
        day, _ = self._day(self._clock())
        with self.engine.begin() as conn:
            _bump(conn, principal.user_id, "day", day, 0, tokens)

    def usage_today(self, principal: Principal) -> dict[str, Any]:
        day, reset = self._day(self._clock())
        with self.engine.connect() as conn:
            row = conn.execute(
                select(UsageCounter.requests, UsageCounter.tokens).where(
                    UsageCounter.user_id == principal.user_id,
                    UsageCounter.period == "day",
                    UsageCounter.bucket == day,
                )
            ).first()
        limits = self.policy.limits_for(principal)
        return {
            "requests": row[0] if row else 0,
            "tokens": row[1] if row else 0,
            "limits": asdict(limits),
            "resets_at": reset.isoformat(),
        }

    def forget_user(self, user_id: str) -> int:
        with self.engine.begin() as conn:
            res = conn.execute(delete(UsageCounter).where(UsageCounter.user_id == user_id))
        return int(res.rowcount)
