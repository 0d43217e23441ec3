"""Every Enclave command line in the deploy files parses with the real CLIs (`enclave`,
`ingest`): a renamed option breaks this test, not a production start."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
import typer

from ingest.cli import app as ingest_app
from policies.cli import app as policies_app
from tests.deploy import deployfiles as files
from ui.launcher import app as enclave_app

CLIS = {"enclave": enclave_app, "ingest": ingest_app, "policies": policies_app}


def _command_lines() -> dict[str, list[str]]:
    lines: dict[str, list[str]] = {}
    compose = files.compose()
    lines["compose:ui"] = compose["services"]["ui"]["command"]
    lines["compose:ingest-worker"] = compose["services"]["ingest-worker"]["command"]
    loop = " ".join(compose["services"]["ingest"]["command"])
    script = compose["services"]["migrate"]["command"][0]
    for n, step in enumerate(s.strip() for s in script.split(";")):
        if step.split()[0] in CLIS:
            lines[f"compose:migrate:{n}"] = shlex.split(step)
    lines["compose:ingest"] = shlex.split(re.search(r"(ingest sync [^;|]+?)\s*\|\|", loop)[1])  # type: ignore[index]
    for kind in ("Deployment", "CronJob"):
        for doc in files.k8s_kind(kind):
            for c in files.pod_spec(doc)["containers"]:
                if c["args"][0] in CLIS:
                    lines[f"k8s:{doc['metadata']['name']}"] = c["args"]
    for unit in files.SYSTEMD_DIR.glob("enclave-*.service"):
        for section, key, value in files.unit_settings(unit):
            if section == "Service" and key == "ExecStart" and "/opt/enclave/" in value:
                argv = shlex.split(value)
                lines[f"systemd:{unit.stem}"] = [argv[0].rsplit("/", 1)[1], *argv[1:]]
    cmd = [ln for ln in files.DOCKERFILE.read_text().splitlines() if ln.startswith("CMD ")]
    lines["docker:CMD"] = json.loads(cmd[-1].removeprefix("CMD "))
    return lines


_LINES = _command_lines()


def _parse(argv: list[str]) -> Any:
    """Parse ``argv`` with the real Typer app, as its console script would, without running:
    descend through sub-command groups (``policies db copy``) to the command itself."""
    cmd: Any = typer.main.get_command(CLIS[argv[0]])
    ctx = cmd.make_context(argv[0], list(argv[1:]))
    args = list(argv[1:])
    while hasattr(cmd, "get_command"):
        name, args = args[0], args[1:]
        sub = cmd.get_command(ctx, name)
        assert sub is not None, f"no command {name!r} in {argv[0]}"
        cmd, ctx = sub, sub.make_context(name, list(args), parent=ctx)
    return ctx


def test_all_deploy_command_lines_were_found() -> None:
    assert {
        "compose:ui",
        "compose:ingest",
        "compose:ingest-worker",
        "compose:migrate:1",
        "compose:migrate:2",
        "k8s:enclave-ui",
        "k8s:enclave-ingest-corp",
        "k8s:enclave-ingest-worker",
        "systemd:enclave-ui",
        "systemd:enclave-ingest",
        "docker:CMD",
    } <= set(_LINES)


@pytest.mark.parametrize("where", sorted(_LINES))
def test_command_line_parses(where: str) -> None:
    argv = _LINES[where]
    ctx = _parse(argv)  # raises the CLI's UsageError on an unknown option or missing argument
    if argv[1] == "run":
        assert ctx.params["port"] == 8501 and ctx.params["address"] in {"0.0.0.0", "127.0.0.1"}
    if argv[1] == "sync":
        assert ctx.params["source"] == "corp"
    if argv[1] == "migrate-index":
        assert ctx.params["to_url"] == "http://qdrant:6333"
    if argv[1:3] == ["db", "copy"]:
        assert str(ctx.params["to_file"]) == "/run/secrets/enclave_database_url"


def test_a_wrong_option_would_be_caught() -> None:
    with pytest.raises(Exception, match="No such option") as err:
        _parse(["enclave", "run", "--host", "0.0.0.0"])
    assert type(err.value).__name__ == "NoSuchOption"
    with pytest.raises(Exception, match="Missing parameter: source"):
        _parse(["ingest", "sync", "/shares/corp"])
