from datetime import timedelta
from pathlib import Path

import pytest

from harvester.settings import SettingsError, load_settings


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings({"HARVESTER_DATA_DIR": str(tmp_path)})
    assert settings.cadence == timedelta(minutes=5)
    assert settings.lateness_window == timedelta(hours=1)
    assert settings.first_harvest_lookback == timedelta(hours=24)
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'harvester.db'}"
    assert settings.secret_key is None


def test_environment_overrides(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "HARVESTER_DATA_DIR": str(tmp_path),
            "HARVESTER_DATABASE_URL": "postgresql://db/harvester",
            "HARVESTER_BROKER_URL": "redis://broker:6379/0",
            "HARVESTER_REDIS_URL": "redis://state:6379/1",
            "HARVESTER_CADENCE": "10m",
            "HARVESTER_LATENESS_WINDOW": "2h",
            "HARVESTER_FIRST_HARVEST_LOOKBACK": "3d",
            "HARVESTER_SECRET_KEY": "k" * 40,
            "UNRELATED": "x",
        }
    )
    assert settings.effective_database_url == "postgresql://db/harvester"
    assert settings.broker_url == "redis://broker:6379/0"
    assert settings.redis_url == "redis://state:6379/1"
    assert settings.cadence == timedelta(minutes=10)
    assert settings.lateness_window == timedelta(hours=2)
    assert settings.first_harvest_lookback == timedelta(days=3)
    # The key is held as a SecretStr: its repr does not reveal it.
    assert "k" * 40 not in repr(settings)


def test_config_file_and_environment_precedence(tmp_path: Path) -> None:
    config = tmp_path / "harvester.yaml"
    config.write_text("cadence: 15m\nbroker_url: redis://from-file/0\n")
    settings = load_settings(
        {
            "HARVESTER_CONFIG": str(config),
            "HARVESTER_DATA_DIR": str(tmp_path),
            "HARVESTER_BROKER_URL": "redis://from-env/0",
        }
    )
    assert settings.cadence == timedelta(minutes=15)
    assert settings.broker_url == "redis://from-env/0"


def test_bad_duration_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="HARVESTER_CADENCE"):
        load_settings({"HARVESTER_DATA_DIR": str(tmp_path), "HARVESTER_CADENCE": "soon"})


def test_missing_config_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="HARVESTER_CONFIG"):
        load_settings({"HARVESTER_CONFIG": str(tmp_path / "absent.yaml")})


def test_unknown_key_in_config_file_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("cadense: 5m\n")
    with pytest.raises(SettingsError, match="CADENSE"):
        load_settings({"HARVESTER_CONFIG": str(config), "HARVESTER_DATA_DIR": str(tmp_path)})


def test_importing_settings_reads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import harvester.settings

    monkeypatch.setenv("HARVESTER_CADENCE", "not-a-duration")
    # Importing (or re-importing) must not validate the environment; only load_settings does.
    importlib.reload(harvester.settings)
