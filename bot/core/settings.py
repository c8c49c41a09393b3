"""One settings object, read from the environment and `.env`.

Every variable is documented in `.env.example`. Secrets are `SecretStr`: their repr is `'**********'`, so a
settings object can be logged or shown in a traceback without leaking them.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

RESOLUTIONS = ("768P", "1080P")
# Where images may be fetched from: Discord's own media hosts (attachments, and the proxy for linked images).
DISCORD_MEDIA_ORIGINS = (
    "https://cdn.discordapp.com",
    "https://media.discordapp.net",
    "https://images-ext-*.discordapp.net",
)
DURATIONS = (6, 10)


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable and how to fix it."""


# How to get each required or commonly wrong value, shown when it is missing or malformed.
HELP: dict[str, str] = {
    "DISCORD_TOKEN": "Create an application at https://discord.com/developers/applications, open Bot, press "
    "'Reset Token' and put the token in .env as DISCORD_TOKEN=...",
    "NOVITA_API_KEY": "Create a key at https://novita.ai/settings/key-management and put it in .env as "
    "NOVITA_API_KEY=... (or set NOVITA_MODE=simulate to try the bot with simulated videos first).",
    "NOVITA_BASE_URL": "Leave it unset for https://api.novita.ai, or give a full http(s) URL.",
    "DEV_GUILD_ID": "Right-click your server in Discord (Developer Mode on) and 'Copy Server ID'.",
    "NOVITA_MODE": "Use live (the real Novita API) or simulate (trial mode: simulated videos, no key).",
    "DISCORD_APPLICATION_ID": "Developer Portal → your application → General Information → Application ID.",
    "DATABASE_URL": "Leave it unset for the SQLite file at DATABASE_PATH, or give "
    "postgresql://user:password@host:5432/dbname to share the work between several processes.",
    "SHARD_COUNT": "Give the number of gateway shards over all processes (1 or more), e.g. SHARD_COUNT=2, "
    "or leave it unset for one connection.",
    "SHARD_IDS": "List the shards this process connects, separated by commas, e.g. SHARD_IDS=0,1, or leave "
    "it unset for all of them.",
    "MESSAGE_CONTENT_INTENT": "Turn it on in the Developer Portal → your application → Bot → Privileged "
    "Gateway Intents → Message Content Intent, or set MESSAGE_CONTENT_INTENT=false.",
    "MONTHLY_BUDGET_USD": "Give a number of US dollars such as 25, or leave it empty for no default budget.",
    "METRICS_PORT": "Give a free TCP port such as 9464, or leave it empty to serve no metrics.",
}


DEFAULT_CREDITS = {("768P", 6): 1, ("768P", 10): 2, ("1080P", 6): 2}
DEFAULT_PRICES = {("768P", 6): 0.28, ("768P", 10): 0.56, ("1080P", 6): 0.49}
IMAGE_FIELDS = ("image", "image_url")


def _table(text: str, kind: type, defaults: dict[tuple[str, int], Any]) -> dict[tuple[str, int], Any]:
    """Parse '768P/6=1,1080P/6=2' into {('768P', 6): 1, ...}; entries not given keep their defaults."""
    out: dict[tuple[str, int], Any] = dict(defaults)
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        res, _, dur = key.strip().upper().partition("/")
        if res not in RESOLUTIONS or not dur.strip().isdigit() or int(dur) not in DURATIONS or not value:
            raise ValueError(f"'{part}' is not of the form 768P/6=1")
        out[(res, int(dur))] = kind(value.strip())
    return out


def _model_table(text: str, kind: type) -> dict[tuple[str, str, int], Any]:
    """Parse 'hailuo-2.3:768P/6=1,hailuo-2.3:1080P/6=3' into {('hailuo-2.3', '768P', 6): 1, ...}."""
    from .video_models import MODEL_KEYS  # the registry imports settings

    out: dict[tuple[str, str, int], Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        model, _, rest = part.partition(":")
        model = model.strip().lower()
        if model not in MODEL_KEYS:
            raise ValueError(f"'{part}': the model must be one of {', '.join(MODEL_KEYS)}")
        for (res, dur), value in _table(rest, kind, {}).items():
            out[(model, res, dur)] = value
    return out


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    # Secrets and endpoints
    discord_token: SecretStr | None = None
    novita_api_key: SecretStr | None = None
    novita_base_url: str = "https://api.novita.ai"
    # `image` carries the normalised picture as a data URI; `image_url` (the older name, http(s) URLs only)
    # carries the source attachment's link. See `.env.example`.
    novita_image_fields: Annotated[tuple[str, ...], NoDecode] = ("image",)
    database_path: Path = Path("data/hailuo.db")
    # postgresql://user:password@host:port/dbname puts the store on PostgreSQL (several processes) instead
    database_url: SecretStr | None = None
    media_dir: Path = Path("data/media")
    dev_guild_id: int | None = None
    discord_application_id: int | None = None  # for `python -m bot invite`; else read from the token
    novita_mode: str = Field("live", pattern="^(live|simulate)$")  # simulate: trial mode, see simulate.py
    # Ask Discord for the privileged Message Content intent: a mention replying to anyone's image can use it.
    message_content_intent: bool = False
    image_origins: Annotated[tuple[str, ...], NoDecode] = DISCORD_MEDIA_ORIGINS
    # Gateway sharding: SHARD_COUNT shards over all processes, SHARD_IDS those this process connects (all)
    shard_count: int | None = Field(None, ge=1)
    shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = None

    # Novita pacing
    novita_rate_per_minute: int = Field(10, ge=1, le=10_000)
    novita_max_in_flight: int = Field(20, ge=1, le=100_000)
    novita_request_timeout_s: float = Field(30.0, gt=0)
    poll_min_s: float = Field(1.0, gt=0)
    poll_max_s: float = Field(30.0, gt=0)
    poll_first_s: float = Field(5.0, gt=0)
    job_deadline_minutes: float = Field(30.0, gt=0)
    # How long a process's claim on a job lasts without renewal: a job whose process died is taken over by
    # another process within about this long (PostgreSQL; renewed every third of it)
    job_lease_s: float = Field(30.0, ge=1, le=3600)
    download_timeout_s: float = Field(300.0, gt=0)

    # Quotas (defaults; moderators override per server)
    default_quota_credits: int = Field(5, ge=-1)
    default_quota_period: Period = Period.DAY
    user_max_concurrent: int = Field(2, ge=1)
    guild_max_concurrent: int = Field(10, ge=1)
    credit_table: Annotated[dict[tuple[str, int], int], NoDecode] = Field(
        default_factory=lambda: DEFAULT_CREDITS
    )
    price_table: Annotated[dict[tuple[str, int], float], NoDecode] = Field(
        default_factory=lambda: DEFAULT_PRICES
    )
    monthly_budget_usd: float | None = Field(None, ge=0)  # every server without its own /quota budget

    # Health and metrics (off unless a port is given)
    metrics_port: int | None = Field(None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"

    # Per-model credits and prices beyond the base tables (see bot/core/video_models.py); and how long submits
    # pause after Novita said the account is out of credit.
    model_credit_table: Annotated[dict[tuple[str, str, int], int] | None, NoDecode] = None
    model_price_table: Annotated[dict[tuple[str, str, int], float] | None, NoDecode] = None
    novita_balance_pause_s: float = Field(300.0, ge=0)
    # Images
    image_max_concurrent: int = Field(2, ge=1, le=64)

    # Discord presentation
    card_edit_interval_s: float = Field(3.0, ge=0)
    interaction_token_minutes: float = Field(14.5, gt=0, le=15)
    retention_hours: float = Field(72.0, ge=0)

    # Logging
    log_level: str = "INFO"
    log_format: str = Field("text", pattern="^(text|json)$")
    log_file: Path | None = None

    @field_validator("novita_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("novita_image_fields", mode="before")
    @classmethod
    def _fields(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        fields = tuple(value)
        if not fields or any(f not in IMAGE_FIELDS for f in fields):
            raise ValueError("must be image, image_url, or both separated by a comma")
        return fields

    @field_validator("image_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        origins = tuple(str(v).strip().rstrip("/").lower() for v in value)
        for origin in origins:
            scheme, sep, host = origin.partition("://")
            if scheme not in ("http", "https") or not sep or not host or any(c in host for c in "/?#@"):
                raise ValueError(f"'{origin}' is not an origin such as https://cdn.discordapp.com")
        if not origins:
            raise ValueError("must name at least one origin, such as https://cdn.discordapp.com")
        return origins

    @field_validator("credit_table", mode="before")
    @classmethod
    def _credits(cls, value: Any) -> Any:
        return _table(value, int, DEFAULT_CREDITS) if isinstance(value, str) else value

    @field_validator("price_table", mode="before")
    @classmethod
    def _prices(cls, value: Any) -> Any:
        return _table(value, float, DEFAULT_PRICES) if isinstance(value, str) else value

    @field_validator("model_credit_table", mode="before")
    @classmethod
    def _model_credits(cls, value: Any) -> Any:
        return _model_table(value, int) if isinstance(value, str) else value

    @field_validator("model_price_table", mode="before")
    @classmethod
    def _model_prices(cls, value: Any) -> Any:
        return _model_table(value, float) if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if not all(p.isdigit() for p in parts):
                raise ValueError(f"'{value}' is not a list of shard numbers like 0,1")
            return tuple(int(p) for p in parts) or None
        return value

    @field_validator("shard_ids")
    @classmethod
    def _shards_in_range(cls, value: tuple[int, ...] | None, info: ValidationInfo) -> tuple[int, ...] | None:
        if not value:
            return None
        if "shard_count" not in info.data:
            return value  # SHARD_COUNT itself is malformed and reported
        count = info.data["shard_count"]
        if count is None:
            raise PydanticCustomError(
                "setting",
                "SHARD_IDS needs SHARD_COUNT: set SHARD_COUNT to the number of shards over all processes "
                "(e.g. SHARD_COUNT=2 with SHARD_IDS=0 here and SHARD_IDS=1 in the other process), or unset "
                "SHARD_IDS.",
            )
        if too_big := sorted({n for n in value if n >= count}):
            listed = ("shards " if len(too_big) > 1 else "shard ") + ", ".join(map(str, too_big))
            exist = "only shard 0 exists" if count == 1 else f"the shards are 0 to {count - 1}"
            raise PydanticCustomError(
                "setting",
                f"SHARD_IDS lists {listed}, but with SHARD_COUNT={count} {exist}: fix SHARD_IDS or raise "
                "SHARD_COUNT.",
            )
        return tuple(sorted(set(value)))

    @field_validator(
        "discord_token",
        "novita_api_key",
        "database_url",
        "shard_count",
        "monthly_budget_usd",
        "metrics_port",
        "dev_guild_id",
        "discord_application_id",
        mode="before",
    )
    @classmethod
    def _blank_is_missing(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// (user:password@host:port/dbname)")
        return value

    @field_validator("monthly_budget_usd")
    @classmethod
    def _no_budget(cls, value: float | None) -> float | None:
        return round(value, 2) or None if value is not None else None  # 0 means no default budget

    # ------------------------------------------------------------------------------------------------
    def require(self, *names: str) -> None:
        """Raise ConfigError naming the first missing required variable among `names` (field names)."""
        for name in names:
            if getattr(self, name) is None:
                var = name.upper()
                raise ConfigError(f"{var} is not set. {HELP.get(var, '')}".strip())

    def credits_for(self, resolution: str, duration: int) -> int:
        return self.credit_table[(resolution, duration)]

    def price_for(self, resolution: str, duration: int) -> float:
        return self.price_table[(resolution, duration)]

    @property
    def shard_problem(self) -> str | None:
        """Why this process may not run the shards it is given, if it may not (one sentence)."""
        if self.shard_count is None or self.shard_ids is None or self.database_url is not None:
            return None
        if set(self.shard_ids) == set(range(self.shard_count)):
            return None
        ids = ",".join(map(str, self.shard_ids))
        return (
            f"SHARD_IDS={ids} leaves the other shards of SHARD_COUNT={self.shard_count} to another process, "
            "which cannot share this SQLite database: set DATABASE_URL to a PostgreSQL database for "
            "several processes, or unset SHARD_IDS so that this process connects every shard."
        )

    @property
    def database_url_value(self) -> str | None:
        return self.database_url.get_secret_value() if self.database_url is not None else None

    @property
    def videos_dir(self) -> Path:
        return self.media_dir / "videos"

    @property
    def images_dir(self) -> Path:
        return self.media_dir / "images"


def load_settings(**overrides: Any) -> Settings:
    """Read settings; turn validation errors into one ConfigError naming each variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            if err["type"] == "setting":  # a whole sentence that names the variable itself
                lines.append(err["msg"])
                continue
            var = str(err["loc"][0]).upper() if err["loc"] else "?"
            hint = HELP.get(var, "See .env.example for the expected form.")
            lines.append(f"{var} is malformed: {err['msg']}. {hint}")
        raise ConfigError("\n".join(lines)) from None
