"""The approved-model check for a vLLM weights directory: the manifest digest the app computes
equals the documented shell pipeline, and the licence gate lets exactly that directory serve."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from assistant.modelcheck import verify_servable
from core.errors import ModelNotServableError
from core.settings import load_settings
from policies.service import PolicyService
from policies.weights_digest import weights_manifest, weights_sha256

# The operator's command from docs/deploy.md and policies/weights_digest.py.
SHELL_DIGEST = (
    "find . -type f ! -path '*/.*' -printf '%P\\n' | LC_ALL=C sort "
    "| xargs -d '\\n' sha256sum | sha256sum"
)


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    d = tmp_path / "Meta-Llama-3-70B-Instruct-AWQ"
    (d / "sub").mkdir(parents=True)
    (d / ".cache" / "huggingface").mkdir(parents=True)
    (d / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (d / "model-00001-of-00002.safetensors").write_bytes(os.urandom(70_000))
    (d / "model-00002-of-00002.safetensors").write_bytes(os.urandom(50_000))
    (d / "tokenizer.json").write_text('{"model": "bpe"}')
    (d / "sub" / "generation_config.json").write_text("{}")
    (d / ".cache" / "huggingface" / "download.lock").write_text("ignored")
    (d / ".gitattributes").write_text("ignored")
    return d


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="coreutils sha256sum missing")
def test_app_digest_equals_the_documented_shell_pipeline(weights: Path) -> None:
    out = subprocess.run(
        ["bash", "-c", SHELL_DIGEST], cwd=weights, capture_output=True, text=True, check=True
    ).stdout
    assert out.split()[0] == weights_sha256(weights)
    lines = weights_manifest(weights).splitlines()
    assert [ln.split("  ", 1)[1] for ln in lines] == [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "sub/generation_config.json",
        "tokenizer.json",
    ]


def test_licence_gate_serves_exactly_the_approved_directory(weights: Path, tmp_path: Path) -> None:
    digest = weights_sha256(weights)
    registry = tmp_path / "models.yaml"
    registry.write_text(
        "licences:\n"
        "  open:\n"
        "    title: Test licence\n"
        "    requires_acceptance: false\n"
        "models:\n"
        "  - name: Meta-Llama-3-70B-Instruct\n"
        "    display_name: Meta Llama 3 70B Instruct (AWQ, vLLM)\n"
        f"    file: {weights.name}\n"
        f"    sha256: {digest}\n"
        "    licence: open\n"
        "    derivative: false\n"
    )
    config = tmp_path / "enclave.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        "[llm]\n"
        'backend = "openai"\n'
        'base_url = "http://127.0.0.1:9/v1"\n'
        'model_name = "Meta-Llama-3-70B-Instruct"\n'
        f'model_path = "{weights}"\n'
        "[policy]\n"
        f'models_file = "{registry}"\n'
    )
    settings = load_settings(config)
    policies = PolicyService.from_settings(settings)
    ident = verify_servable(settings, policies)
    assert ident.sha256 == digest and ident.decision.allowed

    # one changed byte in one shard: a different model as far as the gate is concerned
    shard = weights / "model-00002-of-00002.safetensors"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ModelNotServableError) as err:
        verify_servable(settings, policies)
    assert err.value.code == "licence.hash_mismatch"
