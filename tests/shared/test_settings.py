from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from shared.settings import SettingsError, load_settings

pytestmark = pytest.mark.usefixtures("clean_environment")

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def test_defaults_without_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./data/ripartire.db"
    assert settings.telegram_token is None
    assert str(settings.telegram_api_url) == "https://api.telegram.org/"
    assert settings.webhook_url is None
    assert settings.secret_key is None
    assert settings.tz.key == "Europe/Rome"


def test_every_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "RIPARTIRE_DATABASE_URL": "postgresql+asyncpg://app:pw@db.example:5432/ripartire",
        "RIPARTIRE_TELEGRAM_TOKEN": TOKEN,
        "RIPARTIRE_TELEGRAM_API_URL": "http://127.0.0.1:8081",
        "RIPARTIRE_WEBHOOK_URL": "https://ripartire.example.org/telegram",
        "RIPARTIRE_WEBHOOK_SECRET": "s3cret-token_for-webhook",
        "RIPARTIRE_SECRET_KEY": "k" * 48,
        "RIPARTIRE_TIMEZONE": "Europe/Berlin",
        "RIPARTIRE_BOOKING_MIN_NOTICE_MINUTES": "60",
        "RIPARTIRE_PROGRAM_START": "2021-01-01",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.database.drivername == "postgresql+asyncpg"
    assert settings.telegram_token is not None
    assert settings.telegram_token.get_secret_value() == TOKEN
    assert str(settings.telegram_api_url) == "http://127.0.0.1:8081/"
    assert str(settings.webhook_url) == "https://ripartire.example.org/telegram"
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == "s3cret-token_for-webhook"
    assert settings.require_secret_key() == "k" * 48
    assert settings.tz.key == "Europe/Berlin"
    assert settings.booking_min_notice_minutes == 60
    assert settings.program_start == date(2021, 1, 1)


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("RIPARTIRE_TIMEZONE=Europe/Paris\n", encoding="utf-8")
    assert load_settings().timezone == "Europe/Paris"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("RIPARTIRE_DATABASE_URL", "not a url", "not a database URL"),
        ("RIPARTIRE_DATABASE_URL", "mysql://u@h/db", "not supported"),
        ("RIPARTIRE_DATABASE_URL", "postgresql://u@h/db", "not supported"),
        ("RIPARTIRE_TELEGRAM_TOKEN", "hello", "BotFather"),
        ("RIPARTIRE_TELEGRAM_API_URL", "api.telegram", "URL"),
        ("RIPARTIRE_WEBHOOK_URL", "http://insecure.example/hook", "https"),
        ("RIPARTIRE_WEBHOOK_URL", "::::", "URL"),
        ("RIPARTIRE_WEBHOOK_SECRET", "short", "16 to 256"),
        ("RIPARTIRE_SECRET_KEY", "tooshort", "at least 32"),
        ("RIPARTIRE_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("RIPARTIRE_BOOKING_HORIZON_DAYS", "0", "greater than or equal"),
        ("RIPARTIRE_MUNICIPALITIES", "Cernusco sul Naviglio", "JSON list"),
        ("RIPARTIRE_MUNICIPALITIES", '["Cernusco sul Naviglio"', "JSON list"),
        ("RIPARTIRE_MUNICIPALITIES", '{"name": "Cernusco"}', "JSON list"),
        ("RIPARTIRE_MUNICIPALITIES", "[1, 2]", "valid string"),
    ],
)
def test_bad_values_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    if name == "RIPARTIRE_WEBHOOK_URL":
        monkeypatch.setenv("RIPARTIRE_WEBHOOK_SECRET", "a-long-enough-secret")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert name in str(caught.value)
    assert fragment in str(caught.value)


def test_webhook_without_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIPARTIRE_WEBHOOK_URL", "https://ripartire.example.org/telegram")
    with pytest.raises(SettingsError, match="RIPARTIRE_WEBHOOK_SECRET"):
        load_settings()


def test_secret_key_has_no_default_outside_demo() -> None:
    with pytest.raises(SettingsError, match="RIPARTIRE_SECRET_KEY"):
        load_settings().require_secret_key()
    demo_key = load_settings(demo=True).require_secret_key()
    assert len(demo_key) >= 32


def test_data_keys_first_encrypts_none_outside_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="RIPARTIRE_DATA_KEY is not set"):
        load_settings().require_data_keys()
    assert load_settings().data_keys() == ()
    [demo_key] = load_settings(demo=True).require_data_keys()
    assert load_settings(demo=True).data_keys() == (demo_key,)  # one per process
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("RIPARTIRE_DATA_KEY", f" {new} , {old},")
    assert load_settings().require_data_keys() == (new, old)
    monkeypatch.setenv("RIPARTIRE_DATA_KEY", "")
    assert load_settings().data_keys() == ()


def test_a_bad_data_key_is_named_and_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    good = Fernet.generate_key().decode()
    monkeypatch.setenv("RIPARTIRE_DATA_KEY", f"{good},{good[:-2]}")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert message.startswith("RIPARTIRE_DATA_KEY: key 2 of 2 is not a Fernet key")
    assert good[:-2] not in message


def test_municipalities_are_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIPARTIRE_MUNICIPALITIES", '["Cernusco sul Naviglio", "Pioltello"]')
    assert load_settings().municipalities == ("Cernusco sul Naviglio", "Pioltello")


def test_municipalities_in_dotenv_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("RIPARTIRE_MUNICIPALITIES=Cernusco\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"RIPARTIRE_MUNICIPALITIES: .*JSON list"):
        load_settings()
