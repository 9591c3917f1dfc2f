"""One typed settings object, from ``HARVESTER_*`` variables and an optional YAML file.

Built once per process by :func:`load_settings` (the CLI, a worker after fork, a test),
never at import time, so nothing reads the environment just because a module was imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import platformdirs
import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from harvester.durations import parse_duration

ENV_PREFIX = "HARVESTER_"
CONFIG_ENV = "HARVESTER_CONFIG"


class SettingsError(Exception):
    """The settings cannot be used; the message names the variable and what is wrong."""


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("audit-harvester", appauthor=False))


class Settings(BaseSettings):
    """Everything a process needs to know about its environment.

    Every field can be set as ``HARVESTER_<FIELD>`` (upper case) or in the YAML file named by
    ``HARVESTER_CONFIG``; the environment wins over the file.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    broker_url: str = "redis://127.0.0.1:6379/0"
    redis_url: str = "redis://127.0.0.1:6379/1"
    secret_key: SecretStr | None = None
    external_id: str | None = None
    cadence: timedelta = timedelta(minutes=5)
    lateness_window: timedelta = timedelta(hours=1)
    first_harvest_lookback: timedelta = timedelta(hours=24)
    log_level: str = "INFO"
    # "text" for people, "json" (one object per line) for log pipelines.
    log_format: str = "text"
    # Fleet timing: how often beat dispatches due sources, and the hard time limit of a task
    # (the soft limit, the source lease and the broker's visibility timeout derive from it).
    dispatch_interval: timedelta = timedelta(seconds=30)
    task_time_limit: timedelta = timedelta(minutes=5)
    # An object recorded as queued whose task never finished (its message lost with a dead
    # worker or a restarted broker) is queued again after this long. Longer than a backlog
    # usually lasts: a redo is harmless (scoring de-duplicates) but wasted work.
    requeue_after: timedelta = timedelta(minutes=30)
    # A source that has delivered no new object for this long is ``silent`` (harvester.silence).
    # CloudTrail writes a file every 5 minutes per active region; Firehose flushes EKS audit
    # logs at least every 15 minutes while the API server is used, which is always.
    silent_after_cloudtrail: timedelta = timedelta(hours=1)
    silent_after_eks: timedelta = timedelta(minutes=30)
    harvest_queue: str = "harvest"
    score_queue: str = "score"
    # Notifications (harvester.notify): the queue of the outbox drain, and the console's
    # address, for links in what is sent (https://harvester.example.com).
    notify_queue: str = "notify"
    public_url: str | None = None

    @field_validator(
        "cadence",
        "lateness_window",
        "first_harvest_lookback",
        "dispatch_interval",
        "task_time_limit",
        "requeue_after",
        "silent_after_cloudtrail",
        "silent_after_eks",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("log_format", mode="after")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value.lower() not in ("text", "json"):
            raise ValueError("use text or json")
        return value.lower()

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'harvester.db'}"

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret.key"


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SettingsError(
            f"cannot read the config file {path} named by {CONFIG_ENV}: {exc.strerror}"
        ) from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsError(f"config file {path} must be a mapping of setting: value")
    return {str(k).lower().replace("-", "_"): v for k, v in loaded.items()}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings from ``environ`` (default ``os.environ``), config file, overrides."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    config_path = env.get(CONFIG_ENV)
    if config_path:
        values.update(_read_config_file(Path(config_path)))
    known = set(Settings.model_fields)
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        field = name[len(ENV_PREFIX) :].lower()
        if field in known:
            values[field] = raw
    values.update(overrides)
    try:
        # Values are passed explicitly so that pydantic-settings does not read os.environ
        # behind our back (tests hand in their own environment).
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            problems.append(f"{ENV_PREFIX}{field.upper()}: {err['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
