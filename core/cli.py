"""The contract every Enclave command line follows (``ingest``, ``assistant``, ``policies``,
``enclave``).

- One ``--config FILE`` option (else ``$ENCLAVE_CONFIG``, else the defaults) and one ``--json``.
- Errors print one line on stderr, ``error [code] message``, never a traceback (set
  ``ENCLAVE_DEBUG=1`` to get one for an unexpected error); with ``--json`` the same error is also
  printed on stdout as ``{"error": {"code", "message"}}``.
- One exit-code map (documented in the README): 0 done; 1 failed; 2 usage or configuration
  (bad option, unknown user, invalid config, a precondition such as ``--force``); 3 busy (the
  store or the sync is held by another process: retry later); 4 denied by policy (role,
  licence, access); 130 interrupted. The code comes from the error class
  (``EnclaveError.exit_code``, drawn in :mod:`core.errors`).
- ``--user NAME`` must name a user of the directory: an unknown or disabled user is an error
  (``policy.unknown_user``, exit 2) in every command, never a silent empty result.

Typer code lives only in the packages' ``cli`` modules; they share what is here.
"""

from __future__ import annotations

import functools
import getpass
import inspect
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape

from core.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EnclaveError,
    UnknownUserError,
)
from core.settings import Settings, load_settings

# Model loaders' download/progress bars would garble JSON consumers and the progress line.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file (default: $ENCLAVE_CONFIG, else defaults)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
UserOpt = Annotated[
    str, typer.Option("--user", "-u", help="Directory user the command acts as (must exist).")
]

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def new_app(name: str, help_text: str) -> typer.Typer:
    """A Typer app with Enclave's defaults (no completion install, no rich tracebacks)."""
    return typer.Typer(
        name=name,
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )


def settings(config: Path | None) -> Settings:
    return load_settings(config)


def warn(message: str) -> None:
    err.print(f"[yellow]warning[/] {escape(message)}")


def print_error(code: str, message: str, *, as_json: bool = False) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"error": {"code": code, "message": message}}) + "\n")
        sys.stdout.flush()
    err.print(f"[bold red]error[/] {escape(f'[{code}] {message}')}")


def exit_for(exc: BaseException, *, as_json: bool = False) -> typer.Exit:
    """Print ``exc`` by the contract and return the :class:`typer.Exit` to raise."""
    if isinstance(exc, EnclaveError):
        print_error(exc.code, exc.message, as_json=as_json)
        return typer.Exit(exc.exit_code)
    message = f"{type(exc).__name__}: {exc}"
    if os.environ.get("ENCLAVE_DEBUG"):
        traceback.print_exception(exc)
    else:
        message += " (set ENCLAVE_DEBUG=1 for a traceback)"
    print_error("internal.error", message, as_json=as_json)
    return typer.Exit(EXIT_FAILED)


@contextmanager
def errors(*, as_json: bool = False, on_interrupt: str | None = None) -> Iterator[None]:
    """Map everything raised inside to the contract's message and exit code."""
    try:
        yield
    except (typer.Exit, click.exceptions.Exit, click.ClickException, click.Abort):
        raise
    except KeyboardInterrupt:
        err.print(on_interrupt or "interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        raise exit_for(exc, as_json=as_json) from None


def command(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator: run a command body under :func:`errors` (``as_json`` from its arguments)."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        bound = sig.bind_partial(*args, **kwargs)
        as_json = bool(bound.arguments.get("as_json", False))
        with errors(as_json=as_json):
            return fn(*args, **kwargs)

    return wrapper


def cli_actor() -> str:
    """Who runs a command, as the audit log records it: ``cli:<operating system login>``."""
    return f"cli:{getpass.getuser()}"


def require_user(found: T | None, name: str, source: object | None) -> T:
    """``found`` (the directory's principal for ``name``) or :class:`UnknownUserError`."""
    if found is None:
        where = f": {source}" if source else ": no directory is configured"
        raise UnknownUserError(f"user '{name}' is not in the directory (or is disabled){where}")
    return found
