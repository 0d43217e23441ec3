"""``enclave run``: prepare the data dir, migrate, optionally sync the samples, serve the UI.

With ``--sync-samples`` (the demo set-up of ``make run``) the launcher also generates the sample
documents, syncs them into the embedded index, points the directory and access rules at the
sample ones (unless the config sets its own) and, when the sample directory is the one in
force, creates a local account with a documented demo password for every user of
``samples/directory.yaml``. Those passwords exist only in this demo mode and are printed at
start; a configuration with a directory of its own gets no demo account and no reset.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from core import cli
from core.cli import ConfigOpt
from core.settings import CONFIG_ENV, Settings, load_settings

app = cli.new_app("enclave", "Enclave: serve the chat UI.")
console = cli.out

REPO = Path(__file__).resolve().parent.parent
APP_SCRIPT = Path(__file__).resolve().parent / "server.py"
SAMPLES = REPO / "samples"
SAMPLE_SOURCE = "samples"
SAMPLE_CONFIG = SAMPLES / "enclave.toml"
DEMO_PASSWORD_SUFFIX = "-demo-2026"


def demo_password(user: str) -> str:
    """The documented demo password of a sample user: ``<user>-demo-2026``."""
    return f"{user}{DEMO_PASSWORD_SUFFIX}"


@app.callback()
def _main() -> None:
    """Enclave's UI launcher."""


@app.command()
def run(
    config: ConfigOpt = None,
    port: Annotated[int, typer.Option("--port", help="Port of the UI.")] = 8501,
    address: Annotated[str, typer.Option("--address", help="Address to listen on.")] = "localhost",
    sync_samples: Annotated[
        bool,
        typer.Option(
            "--sync-samples",
            help="Demo: generate + sync the sample documents, create the sample users.",
        ),
    ] = False,
) -> None:
    """Prepare everything, then serve the UI (headless) until interrupted."""
    with cli.errors():
        env = prepare(config, sync_samples=sync_samples)
    cmd = streamlit_command(port, address)
    console.print(f"Serving Enclave on [bold]http://{address}:{port}[/bold] (Ctrl-C stops it)")
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the UI process: the memory the sync used (embedder, parser workers) is released
    # and the UI alone owns the embedded store.
    os.execve(cmd[0], cmd, env)


def streamlit_command(port: int, address: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.headless=true",
        f"--server.port={port}",
        f"--server.address={address}",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        "--client.showErrorDetails=none",
        "--client.toolbarMode=minimal",
        "--global.developmentMode=false",
    ]


def prepare(config: Path | None, *, sync_samples: bool) -> dict[str, str]:
    """Everything before serving; returns the environment for the UI process."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    if config is not None:
        env[CONFIG_ENV] = str(config.expanduser().resolve())
    elif sync_samples and not env.get(CONFIG_ENV):
        env[CONFIG_ENV] = str(SAMPLE_CONFIG)
    settings = load_settings(env.get(CONFIG_ENV))
    if sync_samples and (settings.directory is None or settings.access_rules is None):
        # The demo needs the sample users and rules; a config may still set its own.
        if settings.directory is None:
            env["ENCLAVE_DIRECTORY"] = str(SAMPLES / "directory.yaml")
        if settings.access_rules is None:
            env["ENCLAVE_ACCESS_RULES"] = str(SAMPLES / "access-rules.yaml")
        settings = load_settings(
            env.get(CONFIG_ENV),
            directory=env.get("ENCLAVE_DIRECTORY", settings.directory),
            access_rules=env.get("ENCLAVE_ACCESS_RULES", settings.access_rules),
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate_all(settings)
    console.print(f"Data directory: {settings.data_dir.resolve()}; database migrated.")
    if sync_samples:
        docs = generate_samples(settings)
        sync_folder(settings, docs, SAMPLE_SOURCE)
        create_demo_users(settings)
    return env


def migrate_all(settings: Settings) -> None:
    from assistant.history import HistoryStore
    from core.db import make_engine
    from ingest.sync.state import open_state
    from policies.service import PolicyService
    from ui.sessions import SessionStore

    PolicyService.from_settings(settings)
    open_state(settings.db_url)
    HistoryStore(make_engine(settings.db_url)).migrate()
    SessionStore.from_settings(settings)


def generate_samples(settings: Settings) -> Path:
    if str(REPO) not in sys.path:  # samples/ ships in the repository, not in the wheel
        sys.path.insert(0, str(REPO))
    from samples.generate import generate

    out = settings.data_dir / "sample-docs"
    written = generate(out)
    console.print(f"Generated {len(written)} sample documents in {out}")
    return out


def sync_folder(settings: Settings, root: Path, source: str) -> None:
    from ingest.parsing.workers import stop_parser_server
    from ingest.sync.run import run_sync

    console.print(f"Syncing {root} as source '{source}'…")
    try:
        summary = run_sync(settings, root, source, settings.ingest.workers)
    finally:
        # Before this process becomes the UI (exec): its parser forkserver and resource tracker
        # would linger as zombies of the UI, which never waits for them.
        stop_parser_server()
    counts = ", ".join(f"{k} {v}" for k, v in summary.counters().items())
    console.print(f"Sync finished in {summary.seconds:.1f} s: {counts}")


def create_demo_users(settings: Settings) -> list[str]:
    """Demo mode only: a local account with password ``<user>-demo-2026`` for each user of
    the *sample* directory; returns the names it touched.

    Only when the directory in force is the sample directory itself: with a directory of its
    own (a real deployment started with ``--sync-samples`` by mistake), no account is created
    and no password reset — a user called ``alice`` there is a real person, maybe an admin."""
    from policies.directory import Directory
    from policies.service import PolicyService

    sample_directory = SAMPLES / "directory.yaml"
    configured = settings.directory
    if configured is None or configured.resolve() != sample_directory.resolve():
        console.print(
            "[yellow]Demo accounts not created: the configuration sets its own directory "
            f"({configured}); demo passwords exist only with the sample directory.[/yellow]"
        )
        return []
    service = PolicyService.from_settings(settings)
    if not isinstance(service.directory, Directory):  # ldap.url set: the server is the truth
        console.print("Demo accounts are made only from a YAML directory file; none created.")
        return []
    existing = {a.name for a in service.accounts.list()}
    table = Table(title="Demo accounts (sample directory; demo passwords)")
    table.add_column("user")
    table.add_column("password")
    table.add_column("roles")
    table.add_column("groups")
    touched: list[str] = []
    for entry in Directory.load(sample_directory):
        if entry.disabled:
            continue
        if entry.name in existing:  # demo mode: the printed password must work
            service.accounts.reset_password(entry.name, demo_password(entry.name))
        else:
            service.accounts.create(entry.name, demo_password(entry.name))
        touched.append(entry.name)
        table.add_row(
            entry.name,
            demo_password(entry.name),
            ", ".join(sorted(entry.roles)),
            ", ".join(sorted(entry.groups)),
        )
    console.print(table)
    return touched


if __name__ == "__main__":
    app()
