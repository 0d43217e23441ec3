from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import load_settings


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "enclave.toml"
    path.write_text(body)
    return path


def test_typo_in_section_names_the_key(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "[ingest]\nmax_fle_mb = 3\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert "ingest.max_fle_mb" in str(info.value)
    assert info.value.code == "config.invalid"


def test_typo_at_top_level_names_the_key(tmp_path: Path) -> None:
    cfg = _write(tmp_path, 'acess_rules = "rules.yaml"\n')
    with pytest.raises(ConfigError, match="acess_rules"):
        load_settings(cfg)


def test_paths_in_file_are_relative_to_the_file(tmp_path: Path) -> None:
    cfg = _write(tmp_path, 'data_dir = "d"\naccess_rules = "a.yaml"\ndirectory = "u.yaml"\n')
    s = load_settings(cfg)
    assert s.data_dir == (tmp_path / "d").resolve()
    assert s.access_rules == (tmp_path / "a.yaml").resolve()
    assert s.directory == (tmp_path / "u.yaml").resolve()
    assert s.db_url == f"sqlite:///{(tmp_path / 'd' / 'enclave.db').resolve()}"


def test_env_overrides_file_and_nested_delimiter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _write(tmp_path, '[index]\nbackend = "edge"\n[retrieval]\nk = 3\n')
    monkeypatch.setenv("ENCLAVE_INDEX__BACKEND", "qdrant")
    monkeypatch.setenv("ENCLAVE_CONFIG", str(cfg))
    s = load_settings()
    assert s.index.backend == "qdrant"
    assert s.retrieval.k == 3
    assert s.config == cfg.resolve()


def test_invalid_value_and_bad_toml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"index\.backend"):
        load_settings(_write(tmp_path, '[index]\nbackend = "pinecone"\n'))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(_write(tmp_path, "data_dir = \n"))
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")


def test_empty_config_env_means_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCLAVE_CONFIG", "")
    assert load_settings().config is None
