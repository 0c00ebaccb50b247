"""SQL per update: what an update needs it reads once, however many screens show it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import event, select
from telegram.ext import Application

from shared.citizens.models import Citizen
from shared.db import Database
from shared.settings import Settings
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.bot.fake_telegram import FakeTelegram, texts
from tests.bot.test_booking import data, new_citizen, open_helpdesks
from tests.bot.test_conversation import at_step
from tests.conftest import AUDIT_CHAIN_HEAD

# How each repeatable read starts (SQLAlchemy's own rendering, the same on both backends).
INTAKE_ROW = "SELECT intake.id,"
WAITLIST_ROW = "SELECT waitlist_entry.id,"
FREE_SLOTS = "SELECT 'rule' AS kind,"
HELPDESK_ROW = "SELECT helpdesk.id,"
REACHABLE = "SELECT citizen.unreachable"

# The budgets of SQL statements per update (issue 11, docs/benchmarks.md), SAVEPOINT and
# RELEASE counted, BEGIN and COMMIT not. The turn alone (update recorded, sender found) is 1,
# plus 1 to keep its replies until they are sent (issue 15: `REPLIES_KEPT`).
# The consent and the booking record audit events: their budgets count the chain's end.
REPLIES_KEPT = 1
ANSWER_BUDGET = 3 + REPLIES_KEPT
CONSENT_BUDGET = 4 + REPLIES_KEPT + AUDIT_CHAIN_HEAD
CONFIRM_BUDGET = 10 + REPLIES_KEPT
BOOKING_BUDGET = 12 + REPLIES_KEPT + AUDIT_CHAIN_HEAD


class Statements(list[str]):
    def starting(self, prefix: str) -> int:
        return sum(1 for s in self if s.startswith(prefix))


@pytest.fixture
def statements(database: Database) -> Iterator[Statements]:
    """The statements sent while the test runs, whitespace folded (SQLite's BEGIN left out)."""
    seen = Statements()

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        folded = re.sub(r"\s+", " ", statement).strip()
        if not folded.upper().startswith("BEGIN"):
            seen.append(folded)

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


async def test_consent_is_within_its_budget(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    statements: Statements,
) -> None:
    user = TelegramUser(bot_app, fake, 903)
    await user.say("/start")
    await user.press("lang:it")
    statements.clear()
    await user.press("consent:yes:it")
    # The turn, the citizen, the consent's audit event, the questionnaire started.
    assert len(statements) <= CONSENT_BUDGET, statements
    assert statements.starting("SELECT citizen.") == 0, statements


async def test_an_answer_is_three_statements(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    statements: Statements,
) -> None:
    user = await at_step(bot_app, fake, database, bot_settings, 900, "urgent")
    # Record the update and find the citizen (one), read the intake (locked), write it.
    for answer in (
        user.press("ans:urgent:no"),
        user.say("Maria Rossi"),
        user.say("331 693 8049"),
        user.press("skip:email"),
    ):
        statements.clear()
        await answer
        assert statements.starting(INTAKE_ROW) == 1, statements
        assert len(statements) == ANSWER_BUDGET, statements


async def test_confirming_reads_each_thing_once(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    statements: Statements,
) -> None:
    [helpdesk] = await open_helpdesks(database, "Sportello Centro")
    user = await at_step(bot_app, fake, database, bot_settings, 901, "fiscal_code")
    await user.press("skip:fiscal_code")
    statements.clear()
    calls = await user.press("ok")
    # Eligible, one helpdesk: straight to its days, without "another helpdesk".
    assert data(calls, f"day:{helpdesk}:") and not data(calls, "hds"), texts(calls)
    assert statements.starting(INTAKE_ROW) == 1
    # The waitlist is read with the rest of the citizen's standing, in its one statement.
    assert statements.starting(WAITLIST_ROW) == 0
    assert statements.starting(FREE_SLOTS) == 1
    assert statements.starting(HELPDESK_ROW) == 1


async def _book_on_the_third_day(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    statements: Statements,
    user_id: int,
) -> None:
    """A citizen books the first time of the third open day; `statements` holds only the
    booking update's. The third day: both reminders are still ahead whatever the time of
    day (on today's first slot, after 6:00 both would already be past and none queued)."""
    await open_helpdesks(database, "Sportello Centro")
    await new_citizen(database, bot_settings, user_id)
    user = TelegramUser(bot_app, fake, user_id)
    third_day = data(await user.press("hds"), "day:")[2]
    confirm = await user.press(data(await user.press(third_day), "tm:")[0])
    statements.clear()
    booked = await user.press(data(confirm, "bk:")[0])
    assert [c.method for c in booked if c.method == "sendDocument"] == ["sendDocument"]


async def test_booking_reads_the_helpdesk_and_the_reachability_once(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    statements: Statements,
) -> None:
    await _book_on_the_third_day(bot_app, fake, database, bot_settings, statements, 902)
    assert statements.starting(HELPDESK_ROW) == 1
    # Both reminders: the citizen's reachability as read with the standing (no statement of
    # its own), the two queued in one INSERT.
    assert statements.starting(REACHABLE) == 0
    assert statements.starting("INSERT INTO outbox_message") == 1


async def test_booking_is_within_its_budget(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    statements: Statements,
) -> None:
    await _book_on_the_third_day(bot_app, fake, database, bot_settings, statements, 904)
    assert len(statements) <= BOOKING_BUDGET, statements


async def test_a_new_notice_is_asked_without_a_statement_of_its_own(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    statements: Statements,
) -> None:
    user = await at_step(bot_app, fake, database, bot_settings, 905, "urgent")
    async with database.transaction() as session:
        citizen = await session.scalar(select(Citizen).where(Citizen.telegram_user_id == 905))
        assert citizen is not None
        citizen.consent_version = "2026-01"
    statements.clear()
    calls = await user.press("ans:urgent:no")
    assert "renew:yes" in [d for c in calls for _, d in c.buttons], texts(calls)
    # The turn alone: the citizen's row it read says which notice they accepted.
    assert len(statements) == 1 + REPLIES_KEPT, statements
    assert statements.starting("INSERT INTO outbound_reply") == 1
