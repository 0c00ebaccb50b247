"""Sensitive free text encrypted at rest (shared.crypto): unreadable in SQL, readable
through the services, re-encrypted by a rotation after which the old key can go, and
refused in one line without the right key; the migration both ways."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet
from sqlalchemy import Text, select, text, type_coerce, update
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from shared import crypto, migrate
from shared.cases import interview as interview_form
from shared.cases import service as cases
from shared.cases.access import StaffMember
from shared.cases.models import Interview
from shared.db import Database
from shared.plans import reviews, view
from shared.plans import service as plans
from shared.plans.models import Plan, PlanOutcome, Trend
from shared.schema import metadata
from shared.settings import Settings
from shared.staff.models import Role
from tests.conftest import DATA_KEY, DatabaseFactory
from tests.factories import make_helpdesk, rome
from tests.shared.cases.builders import NOW, checked_in, make_staff, member
from tests.shared.plans.builders import as_input, complete_input, job_search, plan_with

LATER = NOW + timedelta(days=2)
MEETING = rome(2027, 1, 8, 10)

# One text per encrypted column (and the JSON documents' free text), each findable.
WORK_NOTE = "Licenziata dal magazzino Brambilla"
HOUSEHOLD_NOTE = "Vive con la madre invalida"
WELLBEING_NOTE = "Attacchi di panico da marzo, seguita dal CPS"
FREE_NOTE = "Teme lo sfratto entro Natale"
SITUATION = "Situazione: debiti con la finanziaria Agos"
NEW_SITUATION = "Situazione rivista: il debito Agos rateizzato"
RETURN_COMMENT = "Manca il piano di rientro del debito Agos"
REVIEW_NOTE = "Al colloquio era molto provata"
ITEM_NOTE = "Curriculum consegnato alla Esselunga"
OUTCOME_NOTE = "Assunta alla Esselunga di Pioltello"
SECRETS = (
    WORK_NOTE, HOUSEHOLD_NOTE, WELLBEING_NOTE, FREE_NOTE, SITUATION, NEW_SITUATION,
    RETURN_COMMENT, REVIEW_NOTE, ITEM_NOTE, OUTCOME_NOTE,
)  # fmt: skip

ENCRYPTED = {
    "interview": ("answers",),
    "plan": ("summary", "return_comment", "outcome_notes"),
    "plan_change": ("before", "after"),
    "plan_review": ("progress", "notes"),
}


@dataclasses.dataclass(frozen=True)
class Story:
    case_id: int
    worker: StaffMember


async def _tell_story(session: AsyncSession, settings: Settings) -> Story:
    """A case whose interview, plan, return, changes after approval, review and closure
    each hold one of `SECRETS`."""
    worker = member(await make_staff(session, "giulia"))
    boss = member(await make_staff(session, "carla", Role.COORDINATORE))
    helpdesk = await make_helpdesk(session, name="Sportello Cifrato", places=20)
    _citizen, case, _booking = await checked_in(session, settings, helpdesk)
    await cases.save_interview(
        session=session, case_id=case.id, staff=worker, now=NOW,
        fields={"work.history": [WORK_NOTE], "household.notes": [HOUSEHOLD_NOTE],
                "wellbeing.notes": [WELLBEING_NOTE], "wellbeing.feeling": ["struggling"],
                "notes.notes": [FREE_NOTE]},
    )  # fmt: skip
    await cases.record_outcome(
        session=session, case_id=case.id, outcome="admitted", staff=worker, now=NOW
    )
    data = dataclasses.replace(complete_input(job_search()), summary=SITUATION)
    await plan_with(session, settings, worker, case, data)
    await plans.submit_plan(session=session, case_id=case.id, staff=worker, now=NOW)
    await plans.return_plan(
        session=session, case_id=case.id, comment=RETURN_COMMENT, staff=boss, now=NOW
    )
    await plans.submit_plan(session=session, case_id=case.id, staff=worker, now=NOW)
    await plans.approve_plan(session=session, case_id=case.id, staff=boss, now=LATER)
    await plans.record_signature(
        session=session, case_id=case.id, signed_on=LATER.date(), staff=worker,
        settings=settings, now=LATER,
    )  # fmt: skip
    rows = await plans.get_plan(session=session, case_id=case.id, staff=worker)
    await plans.save_plan(
        session=session, case_id=case.id, data=as_input(rows, summary=NEW_SITUATION),
        staff=worker, settings=settings, now=LATER,
    )  # fmt: skip
    progress = {
        item.key: {"status": "in_progress", "note": ITEM_NOTE}
        for item in reviews.review_items(rows)
    }
    await reviews.record_review(
        session=session, case_id=case.id, held_on=MEETING.date(), progress=progress,
        notes=REVIEW_NOTE, next_review_on=None, staff=worker, settings=settings, now=MEETING,
    )  # fmt: skip
    closure = plans.Closure(
        PlanOutcome.EMPLOYED, Trend.BETTER, Trend.SAME, Trend.SAME, OUTCOME_NOTE
    )
    await plans.close_plan(
        session=session, case_id=case.id, closure=closure, staff=worker, now=MEETING
    )
    return Story(case.id, worker)


async def _stored_text(database: Database) -> dict[str, list[str]]:
    """Every encrypted column's values as the database holds them ("table.column")."""
    found: dict[str, list[str]] = {}
    async with database.engine.connect() as connection:
        for table, columns in ENCRYPTED.items():
            for column in columns:
                rows = await connection.execute(
                    text(f'SELECT CAST("{column}" AS TEXT) FROM "{table}"')
                )
                found[f"{table}.{column}"] = [value for (value,) in rows if value is not None]
    return found


async def _read_back(database: Database, story: Story) -> str:
    """What the services and pages' readers give of the story, as one text."""
    async with database.transaction() as session:
        interview = await session.scalar(
            select(Interview).where(Interview.case_id == story.case_id)
        )
        assert interview is not None
        form = interview_form.load(interview.answers)
        page = await view.get_plan_page(session=session, case_id=story.case_id, staff=story.worker)
        assert page.rows is not None
        plan = page.rows.plan
        [review] = await reviews.reviews_of(session=session, plan_id=plan.id)
        shown = reviews.shown(review)
    return "\n".join(
        [
            form.work.history or "", form.household.notes or "", form.wellbeing.notes or "",
            form.notes.notes or "", plan.summary, plan.return_comment or "",
            plan.outcome_notes or "", shown.notes, *(item.note for item in shown.items),
            repr([c.before for c in page.history]), repr([c.after for c in page.history]),
        ]
    )  # fmt: skip


async def test_the_notes_are_unreadable_in_sql_and_readable_through_the_services(
    database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        story = await _tell_story(session, settings)
    stored = await _stored_text(database)
    for where, values in stored.items():
        # The approval clears the return comment (its step in plan_change keeps it).
        assert values or where == "plan.return_comment", f"the story left {where} empty"
        for value in values:
            assert value.startswith(crypto.MARKER) or value.startswith('"' + crypto.MARKER), where
    dump = "\n".join(value for values in stored.values() for value in values)
    assert [secret for secret in SECRETS if secret in dump] == []

    read = await _read_back(database, story)
    assert [secret for secret in SECRETS if secret not in read] == []


def _fernet_tokens(stored: dict[str, list[str]]) -> list[bytes]:
    tokens = []
    for values in stored.values():
        for value in values:
            token = value.strip('"').removeprefix(crypto.MARKER)
            tokens.append(token.encode())
    return tokens


async def test_rotation_reencrypts_everything_and_the_old_key_can_go(
    database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        story = await _tell_story(session, settings)
        # A value written before encryption, as a restored old row would hold it.
        await session.execute(
            update(Plan).values(outcome_notes=type_coerce("Nota in chiaro", Text))
        )
    new_key = Fernet.generate_key().decode()
    both = Database(database.url, cipher=crypto.DataCipher([new_key, DATA_KEY]))
    try:
        assert "Nota in chiaro" in await _read_back(both, story)
        report = await crypto.rotate(both.engine, metadata.sorted_tables, batch=2)
        again = await crypto.rotate(both.engine, metadata.sorted_tables, batch=2)
    finally:
        await both.dispose()
    stored = await _stored_text(database)
    counted = {where: len(values) for where, values in stored.items() if values}
    everything = {
        where: report.reencrypted.get(where, 0) + report.encrypted_plain.get(where, 0)
        for where in counted
    }
    assert everything == counted
    assert report.encrypted_plain == {"plan.outcome_notes": 1}
    assert report.current == {}
    # A second run finds everything under the new key and writes nothing.
    assert again.current == counted and again.reencrypted == again.encrypted_plain == {}

    new_only = Database(database.url, cipher=crypto.DataCipher([new_key]))
    try:
        await crypto.check_stored(new_only.engine, metadata.sorted_tables)
        read = await _read_back(new_only, story)
    finally:
        await new_only.dispose()
    assert [s for s in SECRETS if s not in read and s != OUTCOME_NOTE] == []
    assert "Nota in chiaro" in read
    for token in _fernet_tokens(stored):
        Fernet(new_key).decrypt(token)
    assert "Nota in chiaro" not in "\n".join(v for vs in stored.values() for v in vs)


async def test_missing_or_wrong_keys_are_refused_in_one_line(
    database: Database, settings: Settings
) -> None:
    keyless = Database(database.url)
    wrong = Database(database.url, cipher=crypto.DataCipher([Fernet.generate_key().decode()]))
    try:
        # Nothing encrypted yet: no key is needed to start.
        await crypto.check_stored(keyless.engine, metadata.sorted_tables)
        async with database.transaction() as session:
            story = await _tell_story(session, settings)
        await crypto.check_stored(database.engine, metadata.sorted_tables)

        with pytest.raises(crypto.DataKeyError) as missing:
            await crypto.check_stored(keyless.engine, metadata.sorted_tables)
        assert str(missing.value) == (
            "RIPARTIRE_DATA_KEY is not set, and the database holds encrypted data "
            "(interview.answers): set the key it was written with"
        )
        with pytest.raises(crypto.DataKeyError) as refused:
            await crypto.check_stored(wrong.engine, metadata.sorted_tables)
        assert str(refused.value).startswith(
            "RIPARTIRE_DATA_KEY does not open the encrypted data (interview.answers)"
        )
        for message in (str(missing.value), str(refused.value)):
            assert "\n" not in message and DATA_KEY not in message

        # Reading or writing without the right key is refused, never a wrong value.
        with pytest.raises(crypto.DataKeyError, match="does not open"):
            await _read_back(wrong, story)
        with pytest.raises(crypto.DataKeyError, match="is not set"):
            await _read_back(keyless, story)
        with pytest.raises(StatementError) as unwritable:
            async with keyless.transaction() as session:
                await session.execute(update(Plan).values(summary="Nuova situazione"))
        assert isinstance(unwritable.value.orig, crypto.DataKeyError)
        with pytest.raises(crypto.DataKeyError, match=r"does not open interview\.answers of row "):
            await crypto.rotate(wrong.engine, metadata.sorted_tables)
    finally:
        await keyless.dispose()
        await wrong.dispose()


def _revisions_around_encryption() -> tuple[str, str]:
    """(the migration that encrypts the stored notes, the one before it)."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    for script in scripts.walk_revisions():
        if script.path.endswith("_encrypted_notes.py"):
            assert isinstance(script.down_revision, str)
            return script.revision, script.down_revision
    raise AssertionError("no encrypted_notes migration")


async def test_the_migration_encrypts_what_is_stored_and_needs_the_key_for_it(
    database_factory: DatabaseFactory, settings: Settings
) -> None:
    encrypting, before = _revisions_around_encryption()
    url = await database_factory.create()
    keyed = Database(url, cipher=crypto.DataCipher([DATA_KEY]))
    keyless = Database(url)
    try:
        await migrate.upgrade(keyed)
        async with keyed.transaction() as session:
            story = await _tell_story(session, settings)
        await migrate.downgrade(keyed, before)
        plain = "\n".join(v for vs in (await _stored_text(keyed)).values() for v in vs)
        assert [s for s in SECRETS if s not in plain] == []
        assert crypto.MARKER not in plain

        with pytest.raises(crypto.DataKeyError) as refused:
            await migrate.upgrade(keyless)
        assert str(refused.value).startswith(
            f"RIPARTIRE_DATA_KEY is not set: migration {encrypting} encrypts the notes already "
            "stored (interview.answers)"
        )
        assert await migrate.current_revision(keyless) == before

        await migrate.upgrade(keyed)
        encrypted = "\n".join(v for vs in (await _stored_text(keyed)).values() for v in vs)
        assert [s for s in SECRETS if s in encrypted] == []
        read = await _read_back(keyed, story)
        assert [s for s in SECRETS if s not in read] == []
    finally:
        await keyed.dispose()
        await keyless.dispose()


async def test_a_new_database_needs_no_key_to_migrate(database_factory: DatabaseFactory) -> None:
    keyless = Database(await database_factory.create())
    try:
        await migrate.upgrade(keyless)
        await crypto.check_stored(keyless.engine, metadata.sorted_tables)
    finally:
        await keyless.dispose()
