"""Issue 14, item 15 (assistant side): ``assistant retrieve`` returns document text, so it is
audited like an answer; a batch file that is not UTF-8 text (raw bytes, or JSON escapes of
lone surrogates) gives one clear error per line or per file, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from core.settings import Settings, load_settings
from policies.service import PolicyService

pytestmark = pytest.mark.slow


def _config(settings: Settings, tmp_path: Path) -> Path:
    cfg = tmp_path / "enclave.toml"
    llm = settings.llm
    cfg.write_text(
        f'data_dir = "{settings.data_dir}"\n'
        f'access_rules = "{settings.access_rules}"\n'
        f'directory = "{settings.directory}"\n'
        f'[llm]\nmodel_path = "{llm.model_path}"\ncontext_window = {llm.context_window}\n'
        f"max_answer_tokens = {llm.max_answer_tokens}\n"
    )
    return cfg


def test_retrieve_is_audited(sample_settings: Settings, tmp_path: Path) -> None:
    cfg = _config(sample_settings, tmp_path)
    audit = PolicyService.from_settings(load_settings(cfg)).audit
    before = audit.head()[0]
    question = "What is the per diem for international trips? Mail me at bo@example.se"
    r = CliRunner().invoke(
        app, ["retrieve", question, "--user", "bob", "--json", "--config", str(cfg)]
    )
    assert r.exit_code == 0, r.output
    results = json.loads(r.stdout.strip().splitlines()[-1])["results"]
    assert results
    [rec] = audit.records(after_id=before)
    assert rec["event_type"] == "retrieve"
    assert rec["user_pseudonym"] == audit.pseudonym("bob")
    assert [x["chunk_id"] for x in rec["retrieved"]] == [x["chunk_id"] for x in results]
    assert rec["question"].endswith("Mail me at [EMAIL]")  # masked like an ask record
    assert rec["details"]["command"] == "assistant retrieve"
    assert audit.verify().ok


def test_batch_with_invalid_text(sample_settings: Settings, tmp_path: Path) -> None:
    cfg = _config(sample_settings, tmp_path)
    runner = CliRunner()
    raw = tmp_path / "latin1.jsonl"
    raw.write_bytes(b'{"id": "a", "question": "caf\xe9 menu"}\n')
    r = runner.invoke(app, ["retrieve", "--batch", str(raw), "--user", "bob", "--config", str(cfg)])
    assert r.exit_code == 2 and "[cli.batch]" in r.output and "Traceback" not in r.output

    escaped = tmp_path / "surrogate.jsonl"
    escaped.write_text(
        '{"id": "a", "question": "caf\\udce9 menu"}\n'
        '{"id": "b", "question": "What is the per diem for international trips?"}\n'
    )
    for command in ("retrieve", "ask"):
        r = runner.invoke(
            app, [command, "--batch", str(escaped), "--user", "bob", "--config", str(cfg)]
        )
        assert r.exit_code == 0, r.output
        lines = [json.loads(x) for x in r.stdout.strip().splitlines() if x.startswith("{")]
        assert [x.get("id") for x in lines] == ["a", "b"], lines
        assert lines[0]["code"] == "cli.batch" and "UTF-8" in lines[0]["error"]
        assert "error" not in lines[1]


def test_no_question_is_a_usage_error(sample_settings: Settings, tmp_path: Path) -> None:
    cfg = _config(sample_settings, tmp_path)
    for command in ("retrieve", "ask"):
        r = CliRunner().invoke(app, [command, "", "--user", "bob", "--config", str(cfg)])
        assert r.exit_code == 2, r.output
        assert "[cli.usage] give a QUESTION or --batch FILE" in r.output


def test_ask_in_a_terminal_prints_the_answer_and_its_sources(
    sample_settings: Settings, tmp_path: Path
) -> None:
    """The plain (not --json) ask: answer, one line per cited source, exit 0 (it crashed after
    the sources on an attribute left from the removed cite-everything fallback)."""
    cfg = _config(sample_settings, tmp_path)
    r = CliRunner().invoke(
        app,
        [
            "ask",
            "What is the per diem for international trips?",
            "--user",
            "bob",
            "--config",
            str(cfg),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "[1] " in r.stdout and "Traceback" not in r.output and "internal.error" not in r.output
    assert "audit id" in r.output
