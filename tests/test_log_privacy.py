"""No personal data in the logs, at any level (issue: Step 5, point 12).

A citizen's whole journey on Telegram (through the real PTB stack) and a case worker's
dashboard session (searches by name, phone and fiscal code; an access log; a database
write that fails) run with the process's logging as `ripartire run` sets it up, every
logger at DEBUG. Nothing that names or identifies a person, and no secret, may reach the
log's output, in either of the log's formats (text and JSON).
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest
from codicefiscale import codicefiscale
from sqlalchemy import text

from bot.application import build_application
from dashboard.app import create_app
from shared import crypto, migrate
from shared.db import Database
from shared.logs import AccessLogFilter, configure_logging
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.models import Role
from tests.bot.clock import MORNING, FixedClock
from tests.bot.fake_telegram import TOKEN, FakeTelegram
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.conftest import DATA_KEY, DatabaseFactory
from tests.dashboard.conftest import csrf_from
from tests.factories import make_helpdesk

USER_ID = 5_550_123
FIRST_NAME = "Giuseppina"
NAME = "Giuseppina Fumagalli"
PHONE_TYPED = "331 693 8049"
EMAIL = "giuseppina.fumagalli@example.org"
FISCAL_CODE = codicefiscale.encode(
    lastname="Fumagalli", firstname="Giuseppina", gender="F",
    birthdate="03/04/1980", birthplace="Milano",
)  # fmt: skip
STAFF_NAME = "Ornella Brambilla"
STAFF_PASSWORD = "ventiquattro cavalli bianchi al mare"
SECRET_KEY = "s" * 24 + "SecretKeyForLogTest"

# What must never be in the log: the person's data in every form it travels in.
PERSONAL = [
    FIRST_NAME, "Fumagalli", NAME, PHONE_TYPED, "3316938049", "+393316938049", EMAIL,
    FISCAL_CODE, FISCAL_CODE.lower(), "Brambilla", STAFF_PASSWORD, TOKEN,
    TOKEN.split(":")[1], SECRET_KEY, DATA_KEY,
]  # fmt: skip
# Session ids, CSRF tokens and their hashes are long runs of URL-safe characters.
TOKEN_LIKE = re.compile(r"(?<![\w/.-])[A-Za-z0-9_-]{32,}(?![\w/.-])")


@pytest.fixture(params=["text", "json"])
def debug_log(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """The process's log set up as `run` does, at DEBUG, every known logger at DEBUG too."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    loggers = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)]
    saved = [(lg, lg.level, lg.filters[:]) for lg in loggers]
    settings = Settings(  # type: ignore[call-arg]
        telegram_token=TOKEN, secret_key=SECRET_KEY, log_format=request.param, _env_file=None
    )
    configure_logging(settings, level=logging.DEBUG)
    buffer = io.StringIO()
    for handler in root.handlers:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(buffer)
    for name in [*logging.root.manager.loggerDict, "sqlalchemy.engine", "telegram", "httpx"]:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        for lg, level, filters in saved:
            lg.setLevel(level)
            lg.filters[:] = filters


async def _bot_journey(database: Database, settings: Settings) -> None:
    async with database.transaction() as session:
        today = MORNING.date()
        await make_helpdesk(session, weekdays=tuple(range(7)), valid_from=today, places=2)
    fake = FakeTelegram()
    bot_settings = settings.model_copy(
        update={"telegram_token": settings.telegram_token, "telegram_api_url": "http://127.0.0.1:9"}
    )
    # On the bot tests' fixed instant: the journey books the same slot whatever the hour.
    app = build_application(
        settings=bot_settings, database=database, request=fake, clock=FixedClock(MORNING)
    )
    await app.initialize()
    try:
        user = TelegramUser(app, fake, USER_ID, first_name=FIRST_NAME)
        await user.say("/start")
        await user.press("lang:it")
        await user.press("consent:yes:it")
        for step in (
            ("press", "ans:residence:yes"), ("press", "ans:situation:job_loss"),
            ("say", "03/2021"), ("press", "ans:pandemic_related:yes"), ("say", "3 1"),
            ("press", "done:benefits:1"), ("press", "done:needs:17"),
            ("press", "ans:urgent:no"), ("say", NAME), ("say", PHONE_TYPED),
            ("say", EMAIL), ("say", FISCAL_CODE),
        ):  # fmt: skip
            how, value = step
            await (user.press(value) if how == "press" else user.say(value))
        calls = await user.press("ok")
        # Book the first time offered, following the bot's own buttons.
        for prefix in ("hd:", "day:", "tm:", "bk:"):
            found = [d for call in calls for _, d in call.buttons if d.startswith(prefix)]
            if found:
                calls = await user.press(found[0])
        assert "prenotato" in " ".join(c.text for c in calls), "the journey did not book"
        await user.say("/prenotazione")
    finally:
        await app.shutdown()


async def _dashboard_session(database: Database, settings: Settings) -> None:
    async with database.transaction() as session:
        await staff.add_user(
            session=session, username="ornella", password=STAFF_PASSWORD,
            role=Role.COORDINATORE, display_name=STAFF_NAME,
        )  # fmt: skip
    app = create_app(settings=settings, database=database)
    access = logging.getLogger("uvicorn.access")
    # (A 500 is the app's answer here, not an exception for the test client.)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        page = await client.get("/login")
        form = {"username": "ornella", "password": STAFF_PASSWORD,
                "csrf_token": csrf_from(page.text)}  # fmt: skip
        assert (await client.post("/login", data=form)).status_code == 303
        for query in ("Fumagalli", PHONE_TYPED, FISCAL_CODE, EMAIL):
            response = await client.get("/cases", params={"q": query})
            assert response.status_code == 200
            # What uvicorn's access log records for it (the ASGI transport has no server).
            path = f"/cases?{response.request.url.query.decode()}"
            access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", path, "1.1", 200)

        # A write that the database refuses: its statement and parameters go to the log.
        if database.is_sqlite:
            create = ["CREATE TRIGGER refuse_sessions BEFORE INSERT ON staff_session "
                      "BEGIN SELECT RAISE(ABORT, 'forced failure'); END"]  # fmt: skip
        else:
            create = [
                "CREATE FUNCTION refuse_sessions() RETURNS trigger AS "
                "$$ BEGIN RAISE EXCEPTION 'forced failure'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_sessions BEFORE INSERT ON staff_session "
                "FOR EACH ROW EXECUTE FUNCTION refuse_sessions()",
            ]
        async with database.transaction() as session:
            for statement in create:
                await session.execute(text(statement))
        page = await client.get("/login")
        form["csrf_token"] = csrf_from(page.text)
        assert (await client.post("/login", data=form)).status_code == 500


async def test_no_personal_data_reaches_the_log_at_debug(
    debug_log: io.StringIO, database_factory: DatabaseFactory
) -> None:
    # As `run` opens it: with the keys of the encrypted columns (the inbox keeps what the
    # citizen typed encrypted).
    database = Database(await database_factory.create(), cipher=crypto.DataCipher([DATA_KEY]))
    try:
        await migrate.upgrade(database)
        settings = Settings(  # type: ignore[call-arg]
            database_url=database.url, secret_key=SECRET_KEY, telegram_token=TOKEN,
            data_key=DATA_KEY, _env_file=None,
        )  # fmt: skip
        await _bot_journey(database, settings)
        await _dashboard_session(database, settings)
    finally:
        await database.dispose()
    output = debug_log.getvalue()
    if output.startswith("{"):
        # JSON: every line one object; the checks below read its decoded values.
        records = [json.loads(line) for line in output.splitlines()]
        output = "\n".join(" ".join(str(v) for v in record.values()) for record in records)
    assert "forced failure" in output, "the database error was not logged"
    assert "GET /cases" in output, "the access log was not written"
    assert len(output.splitlines()) > 50, "the log is suspiciously quiet at DEBUG"
    found = [item for item in PERSONAL if item.lower() in output.lower()]
    assert found == [], f"personal data or secrets in the log: {found}"
    tokens = TOKEN_LIKE.findall(output)
    assert tokens == [], f"token-like strings in the log: {tokens[:5]}"


def test_the_access_log_keeps_the_path_and_drops_the_query() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/cases?q=Fumagalli&from=2026-01-01", "1.1", 200), None,
    )  # fmt: skip
    assert AccessLogFilter().filter(record)
    assert record.getMessage() == '1.2.3.4:5 - "GET /cases?… HTTP/1.1" 200'
    plain = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/agenda", "1.1", 200), None,
    )  # fmt: skip
    assert AccessLogFilter().filter(plain)
    assert plain.getMessage() == '1.2.3.4:5 - "GET /agenda HTTP/1.1" 200'
