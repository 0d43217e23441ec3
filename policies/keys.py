"""Key files kept outside the database: the audit HMAC key and the audit signing key.

Both are created on first use with mode 0600 (directory 0700), atomically, so concurrent
processes agree on one key. The HMAC key makes pseudonyms and text hashes; losing it makes every
pseudonym in the log unlinkable (which is also how a whole-log erasure works). The ed25519
signing key signs every record, checkpoint and export manifest; verifying needs only its public
key (``policy.audit_public_keys``), so a verifier cannot forge. Losing it means new records get
a new key id: keep the old public key in ``audit_public_keys`` so older records still verify.
Who should hold which key is in docs/policies.md ("Keys").
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.errors import ConfigError


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (0600) unless it exists; the first writer wins."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_or_create_hmac_key(path: Path) -> bytes:
    if not path.exists():
        _write_new(path, secrets.token_hex(32).encode() + b"\n")
    raw = path.read_bytes().strip()
    try:
        key = bytes.fromhex(raw.decode("ascii"))
    except ValueError as exc:
        raise ConfigError(f"audit key file {path} is not hex: regenerate or restore it") from exc
    if len(key) < 16:
        raise ConfigError(f"audit key file {path} holds fewer than 16 bytes")
    return key


class HmacKey:
    """Keyed hashes with purpose separation (one key file, one derived key per purpose)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def digest(self, purpose: str, value: str) -> str:
        sub = hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()
        return hmac.new(sub, value.encode("utf-8"), hashlib.sha256).hexdigest()


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_new(path, pem)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise ConfigError(f"signing key file {path} is not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"signing key file {path} is not an ed25519 key")
    return key


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_keys(paths: Sequence[Path]) -> list[str]:
    """PEM texts of the public keys in ``paths`` (``policy.audit_public_keys``)."""
    pems = []
    for path in paths:
        try:
            pem = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"audit public key file {path} cannot be read: {exc}") from exc
        if _public_key(pem) is None:
            raise ConfigError(f"audit public key file {path} is not an ed25519 public key (PEM)")
        pems.append(pem)
    return pems


@lru_cache(maxsize=64)
def _public_key(pem: str) -> Ed25519PublicKey | None:
    try:
        pub = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    return pub if isinstance(pub, Ed25519PublicKey) else None


def key_id_of_pem(pem: str) -> str:
    """:func:`key_id` of a PEM public key ("" when it is not one)."""
    pub = _public_key(pem)
    return key_id(pub) if pub is not None else ""


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, payload: bytes) -> str:
    return base64.b64encode(key.sign(payload)).decode("ascii")


def verify_signature(public_key_pem: str, payload: bytes, signature_b64: str) -> bool:
    from cryptography.exceptions import InvalidSignature

    pub = _public_key(public_key_pem)
    if pub is None:
        return False
    try:
        pub.verify(base64.b64decode(signature_b64, validate=True), payload)
    except (InvalidSignature, ValueError):
        return False
    return True
