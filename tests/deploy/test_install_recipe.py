"""One install recipe (deploy/install.sh): the Makefile, the image and the systemd install all
run it, none repeats its steps, and it works in a clean virtualenv (slow)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy import deployfiles as files

SCRIPT = files.DEPLOY / "install.sh"
DOCS = files.ROOT / "docs" / "deploy.md"
MAKEFILE = files.ROOT / "Makefile"
# The steps only install.sh may spell out.
STEPS = (
    re.compile(r"pip install[^\n]*torch=="),
    re.compile(r"pip install[^\n]*unstructured-inference"),
    re.compile(r"pip install[^\n]*(-e |\s\.\s|\s\.$|/src\b|\.\[)"),
)


def _dry_run(*args: str) -> list[list[str]]:
    out = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [shlex.split(line) for line in out.splitlines() if line.strip()]


def test_steps_run_in_order_torch_first_then_project_then_inference_without_deps() -> None:
    cmds = _dry_run("--venv", "/opt/x", "--extras", "dev", "--editable")
    pips = [c for c in cmds if c[1:4] == ["-m", "pip", "install"]]
    torch_i = next(i for i, c in enumerate(pips) if "torch==2.13.0" in c)
    project_i = next(i for i, c in enumerate(pips) if any(a.endswith("[dev]") for a in c))
    inference_i = next(i for i, c in enumerate(pips) if "unstructured-inference==1.6.14" in c)
    assert torch_i < project_i < inference_i
    assert "--no-deps" in pips[inference_i]
    assert "-e" in pips[project_i]
    # the default embedding backend's ONNX export is made once here, after the project
    assert cmds[-2] == ["/opt/x/bin/python", "-m", "ingest.cli", "prepare-model"]
    check = cmds[-1]
    assert check[1] == "-c" and "unstructured.partition.pdf" in check[2]


def test_torch_index_and_cpu_check_are_options() -> None:
    cmds = _dry_run("--venv", "/v", "--torch-index-url", "https://mirror/cpu", "--cpu-torch")
    torch = next(c for c in cmds if "torch==2.13.0" in c)
    assert torch[torch.index("--index-url") + 1] == "https://mirror/cpu"
    assert "torch.version.cuda" in cmds[-1][2] and "not (1 and" in cmds[-1][2]


def _dockerfile_runs() -> list[str]:
    lines = [
        ln for ln in files.DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#")
    ]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    return [ln.strip()[4:] for ln in text.splitlines() if ln.strip().startswith("RUN ")]


def test_makefile_dockerfile_and_docs_call_the_script() -> None:
    make = MAKEFILE.read_text()
    assert re.search(r"^\tbash deploy/install\.sh --venv \$\(VENV\)", make, re.M), make
    runs = _dockerfile_runs()
    (install,) = [r for r in runs if "deploy/install.sh" in r]
    assert '--torch-index-url "${TORCH_INDEX_URL}"' in install and "--cpu-torch" in install
    assert "COPY deploy/install.sh ./deploy/install.sh" in files.DOCKERFILE.read_text()
    systemd = DOCS.read_text().split("## Single VM (systemd)", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"deploy/install\.sh --venv /opt/enclave/venv", systemd), systemd[:600]


def test_nobody_else_repeats_the_steps() -> None:
    texts = {
        "Makefile": MAKEFILE.read_text(),
        "Dockerfile": "\n".join(_dockerfile_runs()),
        "docs/deploy.md": DOCS.read_text(),
    }
    for name, text in texts.items():
        for step in STEPS:
            assert not step.search(text), f"{name} repeats an install step: {step.pattern}"


def test_runtime_packages_are_one_list() -> None:
    wanted = [
        ln.strip()
        for ln in (files.DEPLOY / "runtime-packages.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert {"tesseract-ocr", "poppler-utils", "libmagic1"} <= set(wanted)
    docker = files.DOCKERFILE.read_text()
    assert docker.count("COPY deploy/runtime-packages.txt") == 2  # build and runtime stages
    systemd = DOCS.read_text().split("## Single VM (systemd)", 1)[1]
    assert "deploy/runtime-packages.txt" in systemd
    for pkg in wanted:  # no stage lists packages of its own
        assert f" {pkg} " not in " ".join(_dockerfile_runs()), pkg


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_recipe_installs_a_working_environment_in_a_clean_venv(tmp_path: Path) -> None:
    """The production install (no extras, not editable) into a fresh virtualenv: PDFs parse.
    Uses pip's cache when the machine has one (CI just ran the same recipe for .venv)."""
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    result = subprocess.run(
        ["bash", str(SCRIPT), "--venv", str(venv), "--python", sys.executable, "--cpu-torch"],
        capture_output=True,
        text=True,
        timeout=3500,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "unstructured PDF partitioner OK" in result.stdout
    assert "embedding model ready for backend onnx" in result.stdout
    models = venv / "share" / "enclave" / "models" / "embed-onnx"
    assert list(models.glob("all-MiniLM-L6-v2-*/onnx/model.onnx")), result.stdout[-2000:]
    pdf = tmp_path / "hello.pdf"
    pdf.write_bytes(_tiny_pdf("Enclave install check"))
    probe = (
        "import sys; from unstructured.partition.pdf import partition_pdf; "
        "print(' '.join(e.text for e in partition_pdf(filename=sys.argv[1], strategy='fast')))"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe, str(pdf)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, "HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
    )
    assert out.returncode == 0 and "Enclave install check" in out.stdout, out.stderr[-3000:]


def _tiny_pdf(text: str) -> bytes:
    """A one-page PDF with one line of text, made with fpdf2 (a dev dependency of the test
    process; the clean virtualenv only parses it)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=24)
    pdf.cell(text=text)
    return bytes(pdf.output())
