"""Settings from the environment or `.env`.

A missing or malformed setting stops start-up with one line naming it; the bot
token is a secret and never appears in a message, a log line or a repr.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SUPPORTED_LOCALES = ("zh_CN", "en")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it."""


class StartupError(Exception):
    """A setting passed its own checks but cannot be used: the database, the token, a file, the Bot API.

    `key` is a `startup.*` locale text that names the setting and says what to do; `params` fill it
    and never hold a secret. `exit_code` 2 means the setting itself is wrong, 1 that what it points
    at failed.
    """

    def __init__(self, key: str, exit_code: int = 1, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.exit_code = exit_code
        self.params = params


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    database_url: str = "sqlite+aiosqlite:///./data/posbot.sqlite3"
    staff_chat_id: int | None = None
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_CN"
    telegram_api_base: str | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "127.0.0.1:8080"
    abandon_after_hours: float = Field(default=48, gt=0)
    terminal_user_id: int = 1
    followup_policy: Path | None = None  # a TOML file; the packaged defaults when unset
    followup_tick_seconds: float = Field(default=30, gt=0)
    # A dispatcher that dies keeps its claimed follow-ups this long before another may take them.
    followup_lease_seconds: float = Field(default=120, gt=0)
    # Telegram allows about 30 messages a second overall; stay under it.
    telegram_rate_per_second: float = Field(default=25, gt=0)
    # A send's whole request; one that times out may have been carried out and is sent again later,
    # counted: a generous time-out keeps such repeats rare.
    telegram_request_timeout_seconds: float = Field(default=15, gt=0)
    # The Bot API breaker: after this many server-side failures in a row (5xx, time-outs, unreadable
    # answers) no call for a pause that doubles with each failed probe up to the maximum. 0: no breaker.
    telegram_breaker_failures: int = Field(default=5, ge=0)
    telegram_breaker_pause_seconds: float = Field(default=1.0, gt=0)
    telegram_breaker_max_pause_seconds: float = Field(default=10.0, gt=0)
    # A process that dies mid-send keeps the replies it claimed this long before another sends them;
    # longer than any one send can take, so that a live sender is never overtaken.
    outbox_lease_seconds: float = Field(default=60, gt=0)
    log_level: str = "INFO"

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
            return frozenset(int(p) for p in parts)
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in SUPPORTED_LOCALES:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_LOCALES)}")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # Operators paste the URL their database gives them; pick the async driver for them.
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("telegram_api_base")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// or http://")
        return value or None

    @field_validator("webhook_url")
    @classmethod
    def _https(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Telegram posts updates only to https; a self-hosted Bot API server (TELEGRAM_API_BASE) in
        # --local mode also accepts plain http, which is how it reaches a bot on its own network.
        allowed = ("https://", "http://") if info.data.get("telegram_api_base") else ("https://",)
        if value and not value.startswith(allowed):
            raise ValueError("must start with https:// (plain http only with a self-hosted TELEGRAM_API_BASE)")
        return value or None

    @field_validator("webhook_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        _, colon, port = value.rpartition(":")
        if not colon or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:8080")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def abandon_after(self) -> timedelta:
        return timedelta(hours=self.abandon_after_hours)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def ensure_data_dir(self) -> None:
        """Create the folder of a SQLite file so the default works from a fresh clone."""
        if self.is_sqlite and ":memory:" not in self.database_url:
            path = self.database_url.split(":///", 1)[1].split("?", 1)[0]
            folder = Path(path).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StartupError("startup.database_folder", folder=folder, reason=exc.strerror or exc) from None


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning pydantic's report into one line that names the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        # Never echo the offending value: it may be the token.
        raise SettingsError(f"setting {name} is invalid: {first['msg']}") from None
