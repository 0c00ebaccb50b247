"""The one settings object, read from the environment and `.env` (SPEC section 7)."""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
from datetime import date
from functools import cached_property
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.fernet import Fernet
from pydantic import (
    AnyHttpUrl,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "RIPARTIRE_"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/ripartire.db"
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_TOKEN_RE = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{20,}$")
# Telegram accepts 1-256 characters from this set in X-Telegram-Bot-Api-Secret-Token.
_WEBHOOK_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
MIN_SECRET_KEY_LENGTH = 32
MIN_METRICS_TOKEN_LENGTH = 24

Minutes = Annotated[int, Field(ge=0, le=60 * 24 * 365)]


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the environment variable."""


class Settings(BaseSettings):
    """Every knob of a Ripartire deployment; each field is `RIPARTIRE_<NAME>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    database_url: str = DEFAULT_DATABASE_URL
    telegram_token: SecretStr | None = None
    telegram_api_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    webhook_url: HttpUrl | None = None
    webhook_secret: SecretStr | None = None
    secret_key: SecretStr | None = None
    # Fernet keys (shared.crypto) for the sensitive free text, separated by commas: the
    # first encrypts, every one decrypts (a rotation puts the new key first).
    data_key: SecretStr | None = None
    timezone: str = "Europe/Rome"
    # `text` for people reading a terminal, `json` (one object a line) for a log collector.
    log_format: Literal["text", "json"] = "text"
    # `/metrics` answers loopback clients, and others sending `Authorization: Bearer <this>`.
    metrics_token: SecretStr | None = None
    # The reverse proxies whose X-Forwarded-For and X-Forwarded-Proto `run` believes
    # (uvicorn's forwarded_allow_ips): addresses or networks separated by commas, or `*`
    # for any client (only where nothing but the proxy can reach the app).
    forwarded_allow_ips: str = "127.0.0.1,::1"

    # Booking rules (SPEC section 4).
    booking_min_notice_minutes: Minutes = 120
    booking_horizon_days: Annotated[int, Field(ge=1, le=366)] = 30
    waitlist_hold_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 30
    reminder_day_before_hour: Annotated[int, Field(ge=0, le=23)] = 18
    reminder_hours_before: Annotated[int, Field(ge=1, le=23)] = 3
    # At a moderated helpdesk, a request not confirmed or declined within this many
    # working days (Monday to Friday, the program's public holidays excluded) expires.
    moderation_expiry_working_days: Annotated[int, Field(ge=1, le=10)] = 2
    # Places per helpdesk and day kept for urgent citizens until the day before (0: none).
    urgent_places_per_day: Annotated[int, Field(ge=0, le=100)] = 0

    # Intake (SPEC section 3): unfinished questionnaires are erased after this many days,
    # with a reminder this many days before.
    intake_expiry_days: Annotated[int, Field(ge=2, le=365)] = 30
    intake_reminder_days_before: Annotated[int, Field(ge=1, le=30)] = 3
    program_start: date = date(2020, 2, 1)
    # Decoded by `_municipalities_from_json`: pydantic-settings' own decoding error names
    # neither the variable nor the expected form.
    municipalities: Annotated[tuple[str, ...], NoDecode] = ("Cernusco sul Naviglio",)

    # Staff sign-in (SPEC section 8).
    session_idle_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 30
    session_absolute_hours: Annotated[int, Field(ge=1, le=24 * 7)] = 12
    login_max_failures: Annotated[int, Field(ge=1, le=100)] = 5
    login_lockout_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 15

    # The intervention plan (SPEC section 5): reviews every this many days from the
    # signature; the region's floor for an internship's gross monthly allowance, in euros
    # (500 in Lombardy, DGR 7763/2018): a lower one is flagged, not refused.
    plan_review_days: Annotated[int, Field(ge=7, le=366)] = 90
    internship_min_allowance_euros: Annotated[int, Field(ge=0, le=10_000)] = 500

    # Deadlines on the figures page (SPEC J6): the interview within this many days of the
    # case becoming eligible, the plan approved within this many days of the interview.
    interview_due_days: Annotated[int, Field(ge=1, le=366)] = 20
    plan_due_days: Annotated[int, Field(ge=1, le=366)] = 30
    # A fund that lasts fewer weeks than this at the pace of the last 8 weeks is flagged.
    fund_runway_warning_weeks: Annotated[int, Field(ge=1, le=104)] = 6

    # The figures page (SPEC J6) is a report, not a live screen: each filter's figures are
    # computed once and served for this many minutes (the default view is kept fresh).
    figures_cache_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 10

    # Privacy (SPEC J8, docs/privacy.md). The controller and its data protection officer
    # (DPO, "RPD") as the privacy notice names them.
    privacy_controller: str = "Comune di Cernusco sul Naviglio"
    privacy_dpo_contact: str | None = None
    # Retention: candidates who never booked are erased this many days after they last
    # wrote; closed cases are anonymised this many days after closing; audit events are
    # kept at least six months (the Garante's rule for administrators' logs), then pruned.
    retention_never_booked_days: Annotated[int, Field(ge=30, le=3 * 366)] = 180
    retention_closed_case_days: Annotated[int, Field(ge=30, le=10 * 366)] = 730
    retention_audit_days: Annotated[int, Field(ge=183, le=10 * 366)] = 366

    # Set by `ripartire demo`: secrets may then be generated on the spot.
    demo: bool = False

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc})") from None
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"driver {url.drivername!r} is not supported; use one of "
                + ", ".join(f"{d}://" for d in SUPPORTED_DRIVERS)
            )
        return value

    @field_validator("municipalities", mode="before")
    @classmethod
    def _municipalities_from_json(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = None
        if not isinstance(decoded, list):
            raise ValueError('not a JSON list (expected e.g. ["Cernusco sul Naviglio"])')
        return decoded

    @field_validator("telegram_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not _TOKEN_RE.match(value.get_secret_value()):
            raise ValueError("not a BotFather token (expected digits, a colon, then the key)")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: HttpUrl | None) -> HttpUrl | None:
        if value is not None and value.scheme != "https":
            raise ValueError("Telegram delivers webhooks only to https:// addresses")
        return value

    @field_validator("webhook_secret", "secret_key", "data_key", "metrics_token")
    @classmethod
    def _empty_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _WEBHOOK_SECRET_RE.match(value.get_secret_value()):
            raise ValueError("use 16 to 256 characters among A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_METRICS_TOKEN_LENGTH:
            raise ValueError(
                f"too short: use at least {MIN_METRICS_TOKEN_LENGTH} random characters"
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"too short: use at least {MIN_SECRET_KEY_LENGTH} random characters")
        return value

    @field_validator("data_key")
    @classmethod
    def _check_data_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        keys = _split_keys(value.get_secret_value())
        for number, key in enumerate(keys, start=1):
            try:
                Fernet(key)
            except ValueError:
                which = f"key {number} of {len(keys)}" if len(keys) > 1 else "the key"
                raise ValueError(
                    f"{which} is not a Fernet key (44 characters of URL-safe base64); "
                    f"generate one with {GENERATE_DATA_KEY}"
                ) from None
        return value if keys else None

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_forwarded_allow_ips(cls, value: str) -> str:
        value = value.strip()
        if value == "*":
            return value
        hosts = [host.strip() for host in value.split(",") if host.strip()]
        for host in hosts:
            try:
                ipaddress.ip_network(host, strict=False)
            except ValueError:
                raise ValueError(
                    f"{host!r} is not an IP address or network (expected e.g. "
                    "127.0.0.1,10.0.0.0/8, or *)"
                ) from None
        return ",".join(hosts)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (expected e.g. Europe/Rome)") from None
        return value

    @model_validator(mode="after")
    def _reminder_before_expiry(self) -> Settings:
        if self.intake_reminder_days_before >= self.intake_expiry_days:
            raise ValueError(
                "RIPARTIRE_INTAKE_REMINDER_DAYS_BEFORE must be smaller than "
                "RIPARTIRE_INTAKE_EXPIRY_DAYS"
            )
        return self

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError(
                "RIPARTIRE_WEBHOOK_SECRET must be set when RIPARTIRE_WEBHOOK_URL is set"
            )
        return self

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def database(self) -> URL:
        return make_url(self.database_url)

    def require_secret_key(self) -> str:
        """The session-signing key; generated per process in demo mode, mandatory otherwise."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if self.demo:
            return _demo_secret
        raise SettingsError(
            "RIPARTIRE_SECRET_KEY is not set: generate one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(48))"`'
        )

    def data_keys(self) -> tuple[str, ...]:
        """The data keys, the one that encrypts first; generated per process in demo mode,
        none when unset (`require_data_keys` is for the commands that need them)."""
        if self.data_key is not None:
            return _split_keys(self.data_key.get_secret_value())
        return (_demo_data_key,) if self.demo else ()

    def require_data_keys(self) -> tuple[str, ...]:
        keys = self.data_keys()
        if not keys:
            raise SettingsError(
                f"RIPARTIRE_DATA_KEY is not set: generate one with {GENERATE_DATA_KEY}"
            )
        return keys


GENERATE_DATA_KEY = (
    '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`'
)


def _split_keys(value: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in value.split(",") if key.strip())


_demo_secret = secrets.token_urlsafe(48)
_demo_data_key = Fernet.generate_key().decode()


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one message naming each variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = ENV_PREFIX + field.upper() if field else "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}: {message}")
        raise SettingsError("; ".join(problems)) from None
    except SourceError as exc:
        # A value the environment source could not decode (a complex field without its
        # own decoder): its message names the field, which is still one line.
        raise SettingsError(str(exc)) from None
