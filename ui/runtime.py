"""Process-wide resources of the UI, created once per configuration and shared by everything.

The UI process owns the embedded store: the :class:`~assistant.service.Assistant` (index,
embedder, model) lives here for the life of the process, and every session, the background
threads (warm-up, scheduled syncs) and the HTTP routes of :mod:`ui.server` share it. A second
handle on the embedded index in the same process would be refused, so there is exactly one
place that opens it: :class:`Resources`.

Resources are keyed by the configuration (``ENCLAVE_CONFIG`` and the ``ENCLAVE_*``
variables), so tests that run the app in-process with different configurations never see each
other's objects. Pages call the module-level shortcuts (``runtime.policies()``), which use the
current environment's key; threads and routes that were handed a key call
``runtime.for_key(key).policies()``.

Plain objects with locks rather than ``st.cache_resource``: the same objects must be reachable
from threads and HTTP handlers that run outside any Streamlit script.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from assistant.history import HistoryStore
from core.db import make_engine
from core.settings import Settings, load_settings

if TYPE_CHECKING:
    from assistant.service import Assistant
    from ingest.index.base import VectorIndex
    from policies.service import PolicyService
    from ui.sessions import SessionStore
    from ui.sync_runner import SyncRunner

ConfigKey = tuple[tuple[str, str], ...]


def config_key() -> ConfigKey:
    """The environment that determines the settings."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("ENCLAVE_")))


class Resources:
    """Everything one configuration needs, each created on first use, at most once.

    One re-entrant lock guards creation (the assistant needs the index and the policies, which
    may be created in the same call); using an object once created takes no lock here."""

    def __init__(self, key: ConfigKey) -> None:
        if key != config_key():
            raise RuntimeError("resources are created under the environment of their key")
        self.key = key
        self.settings: Settings = load_settings()
        self._lock = threading.RLock()
        self._history: HistoryStore | None = None
        self._policies: PolicyService | None = None
        self._index: VectorIndex | None = None
        self._assistant: Assistant | None = None
        self._sync_runner: SyncRunner | None = None
        self._sessions: SessionStore | None = None

    def history(self) -> HistoryStore:
        with self._lock:
            if self._history is None:
                store = HistoryStore(make_engine(self.settings.db_url))
                store.migrate()
                self._history = store
            return self._history

    def policies(self) -> PolicyService:
        with self._lock:
            if self._policies is None:
                from policies.service import PolicyService

                self._policies = PolicyService.from_settings(self.settings)
            return self._policies

    def index(self) -> VectorIndex:
        """The one handle on the index in this process: chat, citations and syncs share it."""
        with self._lock:
            if self._index is None:
                from ingest.index import open_index

                self._index = open_index(self.settings)
            return self._index

    def assistant(self) -> Assistant:
        with self._lock:
            if self._assistant is None:
                from assistant.service import Assistant

                self._assistant = Assistant.from_settings(
                    self.settings, self.policies(), index=self.index()
                )
            return self._assistant

    def assistant_if_loaded(self) -> Assistant | None:
        return self._assistant

    def sync_runner(self) -> SyncRunner:
        with self._lock:
            if self._sync_runner is None:
                from ui.sync_runner import SyncRunner

                self._sync_runner = SyncRunner(self.settings)
            return self._sync_runner

    def sessions(self) -> SessionStore:
        with self._lock:
            if self._sessions is None:
                from ui.sessions import SessionStore

                self._sessions = SessionStore.from_settings(self.settings)
            return self._sessions


_registry: dict[ConfigKey, Resources] = {}
_registry_lock = threading.Lock()


def for_key(key: ConfigKey | None = None) -> Resources:
    """The resources of configuration ``key`` (default: the current environment's)."""
    key = config_key() if key is None else key
    with _registry_lock:
        found = _registry.get(key)
        if found is None:
            found = _registry[key] = Resources(key)
        return found


def settings() -> Settings:
    return for_key().settings


def history() -> HistoryStore:
    return for_key().history()


def policies() -> PolicyService:
    return for_key().policies()


def assistant() -> Assistant:
    return for_key().assistant()


def index() -> VectorIndex:
    return for_key().index()


def sync_runner() -> SyncRunner:
    return for_key().sync_runner()


def sessions() -> SessionStore:
    return for_key().sessions()
