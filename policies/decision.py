"""A policy decision and the policy version that produced it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any


def code_version() -> str:
    try:
        return metadata.version("enclave")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def policy_version(parts: Mapping[str, str]) -> str:
    """``<code version>+<16 hex>``: a hash over the named policy-file hashes and the code version.

    Any change to a policy file or an upgrade of Enclave gives a new version, so every decision
    in the audit log can be traced to the exact rules that made it."""
    h = hashlib.sha256(code_version().encode())
    for name in sorted(parts):
        h.update(f"\0{name}\0{parts[name]}".encode())
    return f"{code_version()}+{h.hexdigest()[:16]}"


@dataclass(frozen=True)
class Decision:
    """``reason_code`` is stable (``usage.rate_limited``); ``message`` is for people."""

    allowed: bool
    reason_code: str
    message: str
    policy_version: str
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def allow(
        cls, reason_code: str, policy_version: str, message: str = "allowed", **details: Any
    ) -> Decision:
        return cls(True, reason_code, message, policy_version, dict(details))

    @classmethod
    def refuse(
        cls, reason_code: str, message: str, policy_version: str, **details: Any
    ) -> Decision:
        return cls(False, reason_code, message, policy_version, dict(details))

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reason_code": self.reason_code,
            "message": self.message,
            "policy_version": self.policy_version,
            "details": dict(self.details),
        }
