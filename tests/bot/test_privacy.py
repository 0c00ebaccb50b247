"""The citizen's privacy on Telegram: the notice (/privacy, a new version accepted once),
and a copy of their data (/miei_dati), through the real PTB stack."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from telegram.ext import Application

from bot.application import COMMANDS, register_commands
from shared.audit.models import AuditEvent
from shared.citizens.models import Citizen
from shared.db import Database
from shared.i18n import Translator
from shared.intake.models import Intake
from shared.privacy import notice
from shared.settings import Settings
from tests.bot.clock import FixedClock
from tests.bot.fake_telegram import Call, FakeTelegram, buttons, texts
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.shared.privacy import builders
from tests.shared.privacy.builders import check_pdf, check_record, pdf_text

OLD_VERSION = "2026-01"


def data_of(calls: list[Call]) -> list[str]:
    return [d for _, d in buttons(calls)]


async def consented(app: Application, fake: FakeTelegram, user_id: int) -> TelegramUser:  # type: ignore[type-arg]
    user = TelegramUser(app, fake, user_id)
    await user.press("consent:yes:it")
    return user


async def set_consent(database: Database, user_id: int, version: str) -> int:
    """The citizen's consent, as if given to `version` of the notice; their id."""
    async with database.transaction() as session:
        citizen = await session.scalar(select(Citizen).where(Citizen.telegram_user_id == user_id))
        assert citizen is not None
        citizen.consent_version = version
        return citizen.id


async def consents(database: Database, citizen_id: int) -> list[AuditEvent]:
    """The citizen's `citizen.consent` events, oldest first."""
    async with database.transaction(read_only=True) as session:
        found = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "citizen.consent", AuditEvent.object_id == str(citizen_id))
            .order_by(AuditEvent.id)
        )
        return list(found.all())


async def stored(database: Database, user_id: int) -> tuple[Citizen, Intake | None]:
    async with database.transaction(read_only=True) as session:
        citizen = await session.scalar(select(Citizen).where(Citizen.telegram_user_id == user_id))
        assert citizen is not None
        intake = await session.scalar(select(Intake).where(Intake.citizen_id == citizen.id))
        return citizen, intake


# --- the notice ----------------------------------------------------------------------------


def _headings(language: str, settings: Settings) -> list[str]:
    return [s.heading for s in notice.notice(language, settings=settings).sections]


async def test_privacy_shows_the_whole_notice_in_both_languages(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    bot_settings: Settings,
) -> None:
    maria = await consented(bot_app, fake, 301)
    calls = await maria.say("/privacy")
    sent = [c.text for c in calls if c.method == "sendMessage"]
    assert all(len(text) <= notice.TELEGRAM_LIMIT for text in sent)
    assert len(sent) >= 2, "the notice is longer than one message"
    whole = "\n".join(sent)
    for heading in _headings("it", bot_settings):
        assert heading in whole, heading
    assert f"versione {notice.VERSION}" in whole
    assert "/miei_dati" in whole and "/cancella" in whole
    assert f"{bot_settings.retention_closed_case_days} giorni" in whole
    assert "(versione dell'informativa " + notice.VERSION + ")" in sent[-1]

    # Before consent, in English: the Telegram language, and the question at the end.
    john = TelegramUser(bot_app, fake, 302, language="en")
    calls = await john.say("/privacy")
    whole = texts(calls)
    for heading in _headings("en", bot_settings):
        assert heading in whole, heading
    assert "Telegram" in whole and "outside the European Economic Area" in whole
    assert data_of(calls) == ["consent:yes:en", "notice:en", "consent:no:en"]
    # The consent screen's button gives the whole notice in the language chosen.
    calls = await TelegramUser(bot_app, fake, 303).press("notice:en")
    assert "Privacy notice" in texts(calls) and "Informativa" not in texts(calls)


async def test_the_consent_screen_shows_the_short_notice(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    bot_settings: Settings,
) -> None:
    calls = await TelegramUser(bot_app, fake, 304).press("lang:it")
    [screen] = [c for c in calls if c.method == "sendMessage"]
    summary = notice.notice("it", settings=bot_settings).summary
    assert summary.heading in screen.text
    assert f"dopo {bot_settings.intake_expiry_days} giorni" in screen.text
    assert "/privacy" in screen.text and "Sei d'accordo" in screen.text
    assert len(screen.text) < notice.TELEGRAM_LIMIT
    assert data_of(calls) == ["consent:yes:it", "notice:it", "consent:no:it"]


async def test_a_new_notice_is_asked_once_and_its_acceptance_recorded(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    clock: FixedClock,
) -> None:
    maria = await consented(bot_app, fake, 310)
    citizen_id = await set_consent(database, 310, OLD_VERSION)
    before = await consents(database, citizen_id)
    _, intake_before = await stored(database, 310)
    assert intake_before is not None

    # Whatever they send next (an answer here) gets the new notice, and nothing else.
    calls = await maria.press("ans:residence:yes")
    assert f"versione {notice.VERSION}" in texts(calls)
    assert data_of(calls) == ["renew:yes", "notice:it", "renew:no"]
    _, intake = await stored(database, 310)
    assert intake is not None and intake.answers == intake_before.answers

    clock.advance(minutes=5)
    calls = await maria.press("renew:yes")
    assert f"hai accettato la versione {notice.VERSION}" in texts(calls)
    # Then back where they were: the questionnaire's first question.
    assert "ans:residence:yes" in data_of(calls)
    citizen, _ = await stored(database, 310)
    assert citizen.consent_version == notice.VERSION
    assert citizen.consented_at == clock.now
    after = await consents(database, citizen_id)
    assert len(after) == len(before) + 1
    assert after[-1].details == {"notice_version": notice.VERSION}
    assert after[-1].actor == f"citizen:{citizen_id}"

    # Asked once: the next message is handled, and a second tap records nothing.
    calls = await maria.press("ans:residence:yes")
    assert "renew:yes" not in data_of(calls)
    _, intake = await stored(database, 310)
    assert intake is not None and intake.answers.get("residence") == "yes"
    calls = await maria.press("renew:yes")
    assert "Hai già accettato" in str([c.params for c in calls])
    assert len(await consents(database, citizen_id)) == len(after)


async def test_declining_a_new_notice_processes_nothing_and_offers_erasure(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
) -> None:
    maria = await consented(bot_app, fake, 320)
    citizen_id = await set_consent(database, 320, OLD_VERSION)
    before = await consents(database, citizen_id)
    await maria.say("ciao")
    calls = await maria.press("renew:no")
    said = texts(calls)
    assert "/cancella" in said and "/miei_dati" in said and "/privacy" in said
    assert "lavorint@cris.it" in said
    citizen, intake = await stored(database, 320)
    assert citizen.consent_version == OLD_VERSION
    assert [e.id for e in await consents(database, citizen_id)] == [e.id for e in before]

    # Nothing else is handled: an answer is not recorded, and the notice is asked again.
    calls = await maria.press("ans:residence:yes")
    assert "renew:yes" in data_of(calls)
    _, again = await stored(database, 320)
    assert again is not None and intake is not None and again.answers == intake.answers
    calls = await maria.say("/prenotazione")
    assert "renew:yes" in data_of(calls)

    # Their rights still work: the notice (with its question), a copy, erasure, a person.
    calls = await maria.say("/privacy")
    assert data_of(calls)[-2:] == ["renew:yes", "renew:no"]
    assert "mydata" in data_of(await maria.say("/miei_dati"))
    assert "erase" in data_of(await maria.say("/cancella"))
    assert "349 152 8955" in texts(await maria.say("/aiuto"))
    calls = await maria.press("erase")
    assert "cancellati" in texts(calls)
    async with database.transaction(read_only=True) as session:
        mine = select(Citizen).where(Citizen.telegram_user_id == 320)
        assert await session.scalar(mine) is None


async def test_the_notice_of_another_version_is_not_asked_of_new_citizens(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
) -> None:
    maria = await consented(bot_app, fake, 330)
    calls = await maria.press("ans:residence:yes")
    assert "renew:yes" not in data_of(calls)
    # Someone who never consented gets the usual start, not the new version's question.
    calls = await TelegramUser(bot_app, fake, 331).say("ciao")
    assert "Scrivi /start" in texts(calls)


# --- the command menu and /aiuto -----------------------------------------------------------


async def test_the_command_menu_and_help_list_miei_dati(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
) -> None:
    assert "miei_dati" in [name for name, _ in COMMANDS]
    await register_commands(bot_app)
    menus = {
        c.params.get("language_code"): c.params["commands"] for c in fake.sent("setMyCommands")
    }
    it = {c["command"]: c["description"] for c in menus[None]}
    en = {c["command"]: c["description"] for c in menus["en"]}
    assert it["miei_dati"] == Translator("it")("A copy of my data") == "Una copia dei miei dati"
    assert en["miei_dati"] == "A copy of my data"
    assert "/miei_dati" in texts(await TelegramUser(bot_app, fake, 340).say("/aiuto"))


# --- /miei_dati ----------------------------------------------------------------------------


async def test_miei_dati_sends_the_pdf_and_the_json_after_a_tap(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    clock: FixedClock,
) -> None:
    async with database.transaction() as session:
        everything = await builders.citizen_with_everything(session, bot_settings, telegram_id=350)
    lucia = TelegramUser(bot_app, fake, 350)
    calls = await lucia.say("/miei_dati")
    assert "PDF" in texts(calls) and "JSON" in texts(calls)
    assert data_of(calls) == ["mydata", "noop"]
    assert not fake.sent("sendDocument")
    async with database.transaction(read_only=True) as session:
        exports = select(func.count()).where(AuditEvent.action == "citizen.data_export")
        assert await session.scalar(exports) == 0

    calls = await lucia.press("mydata")
    documents = [c for c in calls if c.method == "sendDocument"]
    assert [c.text for c in documents] == ["I tuoi dati (PDF)", "I tuoi dati (JSON)"]
    [pdf] = documents[0].files.values()
    [raw] = documents[1].files.values()
    day = clock.now.date().isoformat()
    assert [next(iter(c.files)) for c in documents] == ["document", "document"]
    check_record(json.loads(raw), everything)
    check_pdf(pdf_text(pdf), everything)
    async with database.transaction(read_only=True) as session:
        [event] = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "citizen.data_export")
            )
        ).all()
    assert event.object_id == str(everything.citizen_id) and event.details == {}
    assert json.loads(raw)["generated_at"].startswith(day)


async def test_miei_dati_without_a_record_says_so_and_sends_nothing(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
) -> None:
    stranger = TelegramUser(bot_app, fake, 360)
    calls = await stranger.say("/miei_dati")
    assert "Non abbiamo dati su di te" in texts(calls) and "/start" in texts(calls)
    assert data_of(calls) == []
    calls = await stranger.press("mydata")
    assert "Non abbiamo dati su di te" in texts(calls)
    assert not fake.sent("sendDocument")
    async with database.transaction(read_only=True) as session:
        assert await session.scalar(select(func.count()).select_from(Citizen)) == 0
        exports = select(func.count()).where(AuditEvent.action == "citizen.data_export")
        assert await session.scalar(exports) == 0
