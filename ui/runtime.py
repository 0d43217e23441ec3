"""Process-wide resources of the UI, created once per configuration (``st.cache_resource``).

The UI process owns the embedded store: the :class:`~assistant.service.Assistant` (index,
embedder, model) lives here for the life of the process and every session shares it. Resources
are keyed by the configuration (``ENCLAVE_CONFIG`` and the ``ENCLAVE_*`` variables), so tests
that run the app in-process with different configurations never see each other's objects.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import streamlit as st

from assistant.history import HistoryStore
from core.db import make_engine
from core.settings import Settings, load_settings

if TYPE_CHECKING:
    from assistant.service import Assistant
    from ingest.index.base import VectorIndex
    from policies.service import PolicyService
    from ui.sync_runner import SyncRunner

ConfigKey = tuple[tuple[str, str], ...]


def config_key() -> ConfigKey:
    """The environment that determines the settings."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("ENCLAVE_")))


@st.cache_resource(show_spinner=False)
def _settings(key: ConfigKey) -> Settings:
    return load_settings()


@st.cache_resource(show_spinner=False)
def _history(key: ConfigKey) -> HistoryStore:
    store = HistoryStore(make_engine(_settings(key).db_url))
    store.migrate()
    return store


@st.cache_resource(show_spinner="Loading policies…")
def _policies(key: ConfigKey) -> PolicyService:
    from policies.service import PolicyService

    return PolicyService.from_settings(_settings(key))


@st.cache_resource(show_spinner="Opening the index…")
def _index(key: ConfigKey) -> VectorIndex:
    """The one handle on the index in this process: chat and admin syncs share it."""
    from ingest.index import open_index

    return open_index(_settings(key))


@st.cache_resource(show_spinner="Loading the index and the model…")
def _assistant(key: ConfigKey) -> Assistant:
    from assistant.service import Assistant

    return Assistant.from_settings(_settings(key), _policies(key), index=_index(key))


@st.cache_resource(show_spinner=False)
def _sync_runner(key: ConfigKey) -> SyncRunner:
    from ui.sync_runner import SyncRunner

    return SyncRunner(_settings(key))


def settings() -> Settings:
    return _settings(config_key())


def history() -> HistoryStore:
    return _history(config_key())


def policies() -> PolicyService:
    return _policies(config_key())


def assistant() -> Assistant:
    return _assistant(config_key())


def index() -> VectorIndex:
    return _index(config_key())


def sync_runner() -> SyncRunner:
    return _sync_runner(config_key())
