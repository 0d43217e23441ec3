"""Startup check: GGUF header + sha256 + the real licence gate (PolicyService)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest

from assistant.gguf import read_metadata
from assistant.modelcheck import verify_servable
from core.errors import ModelMismatchError, ModelNotServableError
from core.settings import Settings, load_settings
from policies.service import PolicyService

LLAMA3_TEMPLATE = "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def write_gguf_header(path: Path, kv: dict[str, object]) -> Path:
    """A GGUF v3 file with only a key/value header (what the startup check reads)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv) + 1)
    for key, value in kv.items():
        out += _s(key)
        if isinstance(value, str):
            out += struct.pack("<I", 8) + _s(value)
        else:
            out += struct.pack("<II", 4, int(value))  # type: ignore[call-overload]
    # an array the parser must skip (like the vocabulary)
    out += _s("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 3) + struct.pack("<3f", 1, 2, 3)
    path.write_bytes(out)
    return path


@pytest.fixture
def fake_llama3(tmp_path: Path) -> Path:
    return write_gguf_header(
        tmp_path / "Meta-Llama-3-70B-Instruct-Q4_K_M.gguf",
        {
            "general.architecture": "llama",
            "general.name": "Meta Llama 3 70B Instruct",
            "llama.context_length": 8192,
            "tokenizer.chat_template": LLAMA3_TEMPLATE,
        },
    )


def production_like(tmp_path: Path, model: Path, registry: Path | None = None) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        llm={
            "backend": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "model_name": "Meta-Llama-3-70B-Instruct",
            "model_path": str(model),
            "context_window": 8192,
            "expect_architecture": "llama",
            "expect_context_length": 8192,
            "expect_chat_template": "<|start_header_id|>",
        },
        policy={"models_file": str(registry)} if registry else {},
    )


def test_header_fields_are_read(fake_llama3: Path) -> None:
    info = read_metadata(fake_llama3)
    assert (info.architecture, info.context_length, info.name) == (
        "llama",
        8192,
        "Meta Llama 3 70B Instruct",
    )
    assert info.chat_template == LLAMA3_TEMPLATE


def test_shipped_registry_refuses_llama3_until_its_hash_is_recorded(
    tmp_path: Path, fake_llama3: Path
) -> None:
    settings = production_like(tmp_path, fake_llama3)
    with pytest.raises(ModelNotServableError) as err:
        verify_servable(settings, PolicyService.from_settings(settings))
    assert err.value.code == "licence.hash_not_configured"


def test_recorded_hash_still_needs_the_licence_accepted(tmp_path: Path, fake_llama3: Path) -> None:
    digest = hashlib.sha256(fake_llama3.read_bytes()).hexdigest()
    registry = tmp_path / "models.yaml"
    registry.write_text(
        "licences:\n  llama3:\n    title: Meta Llama 3 Community License\n"
        "    requires_acceptance: true\n"
        "models:\n  - name: Meta-Llama-3-70B-Instruct\n"
        f"    file: {fake_llama3.name}\n    sha256: {digest}\n    licence: llama3\n"
    )
    settings = production_like(tmp_path, fake_llama3, registry)
    with pytest.raises(ModelNotServableError) as err:
        verify_servable(settings, PolicyService.from_settings(settings))
    assert err.value.code == "licence.not_accepted"
    assert err.value.decision.policy_version


def test_wrong_model_for_the_profile_is_refused_before_hashing(
    tmp_path: Path, gguf_path: Path
) -> None:
    settings = production_like(tmp_path, gguf_path)  # the Gemma file under a Llama 3 profile
    with pytest.raises(ModelMismatchError, match="architecture is 'gemma3'"):
        verify_servable(settings, PolicyService.from_settings(settings))


def test_packaged_small_model_is_servable(tmp_path: Path, gguf_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d", llm={"model_path": str(gguf_path)})
    ident = verify_servable(settings, PolicyService.from_settings(settings))
    assert ident.sha256 == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert ident.decision.allowed and ident.info and ident.info.architecture == "gemma3"
