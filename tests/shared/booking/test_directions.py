"""Helpdesk directions per language: Italian required when there are any, the others
optional, and a reader whose language has none gets the Italian ones, told so."""

from __future__ import annotations

from datetime import date, time

import pytest
from sqlalchemy import Date, Time, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import migrate
from shared.audit.models import AuditEvent
from shared.booking import demo, hours
from shared.booking.errors import InvalidSchedule, TextTooLong
from shared.booking.models import Directions, Helpdesk
from shared.db import Database
from shared.settings import Settings
from tests.conftest import DatabaseFactory
from tests.factories import make_helpdesk, rome

ITALIAN = "Secondo piano, porta B."
ENGLISH = "Second floor, door B."


async def _create(session: AsyncSession, directions: hours.DirectionsGiven) -> Helpdesk:
    return await hours.create_helpdesk(
        session=session, name="Centro", address="Via Roma 1", directions=directions, actor="test"
    )


async def test_a_reader_gets_their_language_else_the_italian_ones_said_so(
    session: AsyncSession,
) -> None:
    both = await _create(session, {"it": ITALIAN, "en": ENGLISH})
    assert both.directions_in("en") == Directions(ENGLISH, "en", fallback=False)
    assert both.directions_in("en-GB") == Directions(ENGLISH, "en", fallback=False)
    assert both.directions_in("it") == Directions(ITALIAN, "it", fallback=False)

    both.directions_translations = {}
    fallback = both.directions_in("en")
    assert fallback == Directions(ITALIAN, "it", fallback=True, note="(in Italian)")
    assert fallback.shown == f"{ITALIAN} (in Italian)"
    italian = both.directions_in("it")
    assert italian is not None and italian.shown == ITALIAN
    # A language the program doesn't speak is read in Italian: nothing to point out.
    assert both.directions_in("fr") == Directions(ITALIAN, "it", fallback=False)


async def test_no_directions_is_none_in_every_language(session: AsyncSession) -> None:
    helpdesk = await _create(session, {"it": "  ", "en": ""})
    assert (helpdesk.directions, helpdesk.directions_translations) == ("", {})
    assert helpdesk.directions_in("it") is None
    assert helpdesk.directions_in("en") is None


async def test_directions_are_saved_trimmed_and_replaced_as_a_whole(
    session: AsyncSession,
) -> None:
    helpdesk = await _create(session, {"it": f"  {ITALIAN} ", "en": f" {ENGLISH}\n"})
    await session.refresh(helpdesk)
    assert helpdesk.directions_by_language == {"it": ITALIAN, "en": ENGLISH}
    # The Italian text is still `directions`, for callers not yet asking `directions_in`.
    assert helpdesk.directions == ITALIAN

    await hours.update_helpdesk(
        session=session, helpdesk_id=helpdesk.id, name="Centro", address="Via Roma 1",
        directions={"it": "Piano terra", "en": ""}, actor="test",
    )  # fmt: skip
    await session.refresh(helpdesk)
    assert helpdesk.directions_by_language == {"it": "Piano terra"}
    assert helpdesk.directions_in("en") == Directions(
        "Piano terra", "it", fallback=True, note="(in Italian)"
    )
    # A plain text is the Italian directions, and leaves no other language.
    await hours.update_helpdesk(
        session=session, helpdesk_id=helpdesk.id, name="Centro", address="Via Roma 1",
        directions={"it": "Piano terra", "en": "Ground floor"}, actor="test",
    )  # fmt: skip
    await hours.update_helpdesk(
        session=session, helpdesk_id=helpdesk.id, name="Centro", address="Via Roma 1",
        directions="Primo piano", actor="test",
    )  # fmt: skip
    await session.refresh(helpdesk)
    assert helpdesk.directions_by_language == {"it": "Primo piano"}
    details = list(
        await session.scalars(
            select(AuditEvent.details)
            .where(AuditEvent.object_type == "helpdesk", AuditEvent.object_id == str(helpdesk.id))
            .order_by(AuditEvent.id)
        )
    )
    assert [d["directions"] for d in details] == [["it", "en"], ["it"], ["it", "en"], ["it"]]


async def test_other_languages_need_the_italian_directions(session: AsyncSession) -> None:
    with pytest.raises(hours.ItalianDirectionsMissing) as refused:
        await _create(session, {"it": " ", "en": ENGLISH})
    assert (refused.value.code, refused.value.language) == ("italian_directions_missing", "it")
    assert isinstance(refused.value, InvalidSchedule)
    assert await session.scalar(select(Helpdesk.id)) is None

    helpdesk = await make_helpdesk(session)
    with pytest.raises(hours.ItalianDirectionsMissing):
        await hours.update_helpdesk(
            session=session, helpdesk_id=helpdesk.id, name="Altro nome", address="Via Roma 1",
            directions={"en": ENGLISH}, actor="test",
        )  # fmt: skip
    await session.refresh(helpdesk)
    assert (helpdesk.name, helpdesk.directions_by_language) == ("Sportello Comune", {})


async def test_each_language_has_the_directions_limit(session: AsyncSession) -> None:
    longest = "d" * hours.MAX_DIRECTIONS
    with pytest.raises(hours.DirectionsTooLong) as refused:
        await _create(session, {"it": ITALIAN, "en": longest + "d"})
    assert isinstance(refused.value, TextTooLong)
    assert (refused.value.field, refused.value.language, refused.value.max_length) == (
        "directions", "en", hours.MAX_DIRECTIONS,
    )  # fmt: skip
    with pytest.raises(InvalidSchedule, match="program's languages"):
        await _create(session, {"it": ITALIAN, "xx": "?"})
    assert await session.scalar(select(Helpdesk.id)) is None
    kept = await _create(session, {"it": f" {longest} ", "en": longest})
    assert kept.directions_by_language == {"it": longest, "en": longest}


async def test_the_demo_has_english_directions_for_one_helpdesk(
    session: AsyncSession, settings: Settings
) -> None:
    comune, farsi, *_moderated = await demo.seed(
        session=session, settings=settings, now=rome(2026, 12, 7, 8)
    )
    english = comune.directions_in("en")
    assert english is not None and english.language == "en" and not english.fallback
    italian_only = farsi.directions_in("en")
    assert italian_only is not None and italian_only.fallback


async def test_the_migration_keeps_the_directions_as_the_italian_ones(
    database_factory: DatabaseFactory,
) -> None:
    database = Database(await database_factory.create())
    try:
        await migrate.upgrade(database, "0013")
        async with database.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO helpdesk (id, name, address, directions, active, created_at) "
                    "VALUES (1, 'Centro', 'Via Roma 1', :directions, true, CURRENT_TIMESTAMP)"
                ),
                {"directions": ITALIAN},
            )
            await session.execute(
                text(
                    "INSERT INTO opening_rule (helpdesk_id, weekday, opens_at, closes_at, "
                    "slot_minutes, places, valid_from) "
                    "VALUES (1, 0, :opens, :closes, 30, 1, :first)"
                ).bindparams(
                    bindparam("opens", time(9), type_=Time()),
                    bindparam("closes", time(12), type_=Time()),
                    bindparam("first", date(2026, 1, 1), type_=Date()),
                ),
            )
        await migrate.upgrade(database)
        async with database.transaction() as session:
            helpdesk = await session.get(Helpdesk, 1)
            assert helpdesk is not None
            assert helpdesk.directions_by_language == {"it": ITALIAN}
            assert helpdesk.directions_in("en") == Directions(
                ITALIAN, "it", fallback=True, note="(in Italian)"
            )
            rules = await hours.list_opening_rules(session=session, helpdesk_id=1)
            assert len(rules) == 1  # nothing that points to the helpdesk went
            helpdesk.directions_translations = {"en": ENGLISH}
        await migrate.downgrade(database, "0013")
        async with database.transaction() as session:
            kept = await session.execute(text("SELECT directions FROM helpdesk WHERE id = 1"))
            assert kept.scalar() == ITALIAN
            left = await session.execute(text("SELECT count(*) FROM opening_rule"))
            assert left.scalar() == 1
    finally:
        await database.dispose()
