"""No retrieval path searches without the user's ACL filter.

Every public path (Retriever.search in each mode, Assistant.search/ask/ask_stream, the
`assistant retrieve` and `assistant ask` CLI commands) is driven against the real Qdrant Edge
index class, whose read methods are wrapped to record each call. The test fails if any search
lacks the principal's groups or if any unfiltered read (scroll, id listing) is used.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.service import Assistant
from core.settings import Settings
from ingest.index.edge import EdgeIndex
from policies.identity import Principal

pytestmark = pytest.mark.slow
UNFILTERED_READS = ("scroll_points", "iter_doc_ids", "doc_point_ids")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    log: list[tuple[str, Any]] = []
    real_search = EdgeIndex.search

    def search(self: EdgeIndex, **kwargs: Any) -> Any:
        log.append(("search", kwargs.get("groups")))
        return real_search(self, **kwargs)

    monkeypatch.setattr(EdgeIndex, "search", search)
    for name in UNFILTERED_READS:
        real = getattr(EdgeIndex, name)

        def unfiltered(self: EdgeIndex, *a: Any, _n: str = name, _r: Any = real, **k: Any) -> Any:
            log.append((_n, None))
            return _r(self, *a, **k)

        monkeypatch.setattr(EdgeIndex, name, unfiltered)
    yield log


def _check(log: list[tuple[str, Any]], groups: frozenset[str]) -> None:
    assert log, "the path did not reach the index at all"
    for name, g in log:
        assert name == "search", f"unfiltered read {name} used on a retrieval path"
        assert g == groups, f"search ran with groups {g!r}, expected the principal's {groups!r}"


def test_every_assistant_path_carries_the_filter(
    sample_settings: Settings, calls: list[tuple[str, Any]]
) -> None:
    a = Assistant.from_settings(sample_settings)
    try:
        bob = a.policies.directory.get("bob")
        assert bob is not None
        q = "How many days of paid annual leave do full-time employees get?"
        paths = {
            "retriever.hybrid": lambda: a.retriever.search(q, bob, mode="hybrid"),
            "retriever.dense": lambda: a.retriever.search(q, bob, mode="dense"),
            "retriever.lexical": lambda: a.retriever.search(q, bob, mode="lexical"),
            "assistant.search.k": lambda: a.search(q, bob, k=3),
            "assistant.search": lambda: a.search(q, bob),
            "assistant.ask": lambda: a.ask(q, bob),
            "assistant.ask_stream": lambda: list(a.ask_stream(q, bob)),
            "assistant.ask.abstain": lambda: a.ask("Which wine goes with grilled salmon?", bob),
        }
        for name, run in paths.items():
            calls.clear()
            run()
            try:
                _check(calls, bob.access_ids)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from exc
        # no groups: the engine is never even asked
        calls.clear()
        nobody = Principal(user_id="x", groups=frozenset(), roles=frozenset({"employee"}))
        assert a.search(q, nobody).chunks == []
        a.ask(q, nobody)
        assert [c for c in calls if c[1]] == []
    finally:
        a.close()


def test_cli_paths_carry_the_filter(
    sample_settings: Settings, calls: list[tuple[str, Any]], tmp_path: Path
) -> None:
    cfg = tmp_path / "enclave.toml"
    llm = sample_settings.llm
    cfg.write_text(
        f'data_dir = "{sample_settings.data_dir}"\n'
        f'access_rules = "{sample_settings.access_rules}"\n'
        f'directory = "{sample_settings.directory}"\n'
        f'[llm]\nmodel_path = "{llm.model_path}"\ncontext_window = {llm.context_window}\n'
        f"max_answer_tokens = {llm.max_answer_tokens}\n"
    )
    batch = tmp_path / "q.jsonl"
    batch.write_text(
        '{"id": "a", "question": "What is the per diem for international trips?"}\n'
        "not json\n"
        '{"id": "b", "question": "What is the salary range of an E5 Principal Engineer?"}\n'
    )
    runner = CliRunner()
    r = runner.invoke(
        app, ["retrieve", "per diem", "--user", "bob", "--json", "--config", str(cfg)]
    )
    assert r.exit_code == 0, r.output
    results = json.loads(r.stdout.strip().splitlines()[-1])["results"]
    assert results and set(results[0]) >= {
        "path",
        "source",
        "section",
        "page",
        "score",
        "chunk_id",
        "text",
    }
    _check(calls, frozenset({"engineering", "everyone", "user:bob"}))  # + the user id

    calls.clear()
    r = runner.invoke(
        app, ["retrieve", "--batch", str(batch), "--user", "bob", "--config", str(cfg)]
    )
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.strip().splitlines() if x.startswith("{")]
    assert [x.get("id") for x in lines] == ["a", None, "b"]
    assert "error" in lines[1]  # the bad line is reported, the others still answered
    assert all(not h["path"].startswith("hr/") for h in lines[2]["results"])
    _check(calls, frozenset({"engineering", "everyone", "user:bob"}))  # + the user id

    calls.clear()
    r = runner.invoke(
        app,
        [
            "ask",
            "What is the per diem for international trips?",
            "--user",
            "bob",
            "--json",
            "--config",
            str(cfg),
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(out) >= {"answer", "citations", "refused", "reason", "audit_id", "timings"}
    _check(calls, frozenset({"engineering", "everyone", "user:bob"}))  # + the user id

    calls.clear()
    r = runner.invoke(
        app, ["retrieve", "per diem", "--user", "nobody", "--json", "--config", str(cfg)]
    )
    # an unknown user is an error (the CLI contract), and the engine is never asked
    assert r.exit_code == 2
    assert json.loads(r.stdout.strip().splitlines()[-1])["error"]["code"] == "policy.unknown_user"
    assert calls == []


def test_source_has_no_search_without_groups() -> None:
    """Static guard: every ``.search(`` call on an index in assistant/ passes ``groups=`` and
    nothing in assistant/ uses an unfiltered read."""
    root = Path(__file__).resolve().parents[2] / "assistant"
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in UNFILTERED_READS:
                raise AssertionError(f"{path.name}:{node.lineno} uses {node.attr}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "search"
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "_index"
            ):
                kws = {k.arg for k in node.keywords}
                assert "groups" in kws, f"{path.name}:{node.lineno} searches without groups"
