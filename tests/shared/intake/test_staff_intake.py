"""Staff-side intake: a whole questionnaire at once, same validators, same eligibility."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.booking.errors import AlreadyBooked, NotAllowedToBook, SlotInPast
from shared.booking.models import Booking
from shared.cases import access
from shared.cases.errors import CaseNotVisible
from shared.cases.models import Case
from shared.citizens.models import Citizen
from shared.citizens.service import PRIVACY_NOTICE_VERSION
from shared.db import Database
from shared.intake import staff as staff_intake
from shared.intake.errors import IntakeNotFound
from shared.intake.models import Intake, IntakeState
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.models import Role
from tests.factories import make_citizen, make_helpdesk, rome

NOW = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)  # Monday 08:00 in Rome
ACTOR = "staff:operatore"
# Case workers see unassigned cases and their own (SPEC section 6).
WORKER = access.StaffMember(user_id=10_000, role=Role.OPERATORE, actor=ACTOR)
PASSWORD = "correct horse battery staple"

RAW = {
    "residence": "yes",
    "situation": "job_loss",
    "since": "03/2021",
    "pandemic_related": "not_sure",
    "household": "3 1",
    "benefits": "naspi,other",
    "needs": "job_search",
    "urgent": "yes",
    "name": " Maria  Rossi ",
    "phone": "331 693 8049",
    "email": "",
    "fiscal_code": "rssmra85d03f205p",
}


async def submit(
    session: AsyncSession, settings: Settings, raw: dict[str, str] | None = None, **kwargs: object
) -> staff_intake.Submission:
    arguments: dict[str, object] = {
        "channel": "phone",
        "consent": True,
        "actor": ACTOR,
        "now": NOW,
        "raw": RAW if raw is None else raw,
    }
    arguments.update(kwargs)
    return await staff_intake.submit_intake(session=session, settings=settings, **arguments)  # type: ignore[arg-type]


async def count(session: AsyncSession, model: type[object]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_submission_creates_citizen_and_completed_intake(
    session: AsyncSession, settings: Settings
) -> None:
    done = await submit(session, settings)
    citizen, intake = done.citizen, done.intake
    assert (citizen.channel, citizen.name, citizen.phone) == (
        "phone",
        "Maria Rossi",
        "+393316938049",
    )
    assert (citizen.email, citizen.fiscal_code) == (None, "RSSMRA85D03F205P")
    assert citizen.telegram_user_id is None
    assert citizen.urgent is True
    assert (citizen.consent_version, citizen.consented_at) == (PRIVACY_NOTICE_VERSION, NOW)
    assert intake.citizen_id == citizen.id
    assert intake.state == IntakeState.COMPLETED
    assert (intake.eligible, intake.urgent, intake.completed_at) == (True, True, NOW)
    assert intake.answers == {
        "residence": "yes",
        "situation": "job_loss",
        "since": "2021-03",
        "pandemic_related": "not_sure",
        "household": {"members": 3, "minors": 1},
        "benefits": ["naspi", "other"],
        "needs": ["job_search"],
        "urgent": "yes",
        "name": "Maria Rossi",
        "phone": "+393316938049",
        "email": None,
        "fiscal_code": "RSSMRA85D03F205P",
    }
    assert done.eligibility.eligible and done.eligibility.urgent
    # The case opens as when a citizen confirms in the bot.
    case = await session.get(Case, done.case_id)
    assert case is not None
    assert (case.citizen_id, case.state, case.eligible, case.urgent) == (
        citizen.id, "new", True, True,
    )  # fmt: skip
    events = (await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
    assert [(e.actor, e.action, e.object_id) for e in events] == [
        (ACTOR, "citizen.create", str(citizen.id)),
        (ACTOR, "intake.complete", str(intake.id)),
        (ACTOR, "case.open", str(case.id)),
    ]
    assert events[1].details["eligible"] is True
    # No names or contacts in the log that outlives erasure.
    assert "Maria" not in str([e.details for e in events[:2]])


async def test_every_bad_answer_is_reported_and_nothing_is_written(
    database: Database, settings: Settings
) -> None:
    raw = {**RAW, "residence": "maybe", "since": "13/2021", "household": "2 5", "phone": "12"}
    raw.pop("name")
    with pytest.raises(staff_intake.InvalidSubmission) as caught:
        async with database.transaction() as session:
            await submit(session, settings, raw, channel="fax", consent=False)
    assert caught.value.errors == {
        "channel": "unknown",
        "consent": "missing",
        "residence": "unknown_option",
        "since": "format",
        "household": "minors_exceed",
        "name": "empty",
        "phone": "invalid",
    }
    async with database.transaction(read_only=True) as session:
        assert await count(session, Citizen) == 0
        assert await count(session, Intake) == 0
        assert await count(session, AuditEvent) == 0


async def test_steps_whose_condition_is_false_are_neither_checked_nor_kept(
    session: AsyncSession, settings: Settings
) -> None:
    raw = {**RAW, "situation": "other", "since": "not a date", "pandemic_related": "???"}
    done = await submit(session, settings, raw)
    assert "since" not in done.intake.answers
    assert "pandemic_related" not in done.intake.answers
    assert done.eligibility.eligible is False
    assert done.eligibility.reason_keys == ("situation_not_covered",)
    assert done.intake.eligible is False


async def test_a_step_depending_on_an_invalid_answer_waits_for_it(settings: Settings) -> None:
    with pytest.raises(staff_intake.InvalidSubmission) as caught:
        staff_intake.validate_answers(
            {**RAW, "situation": "", "since": ""}, today=NOW.date(), settings=settings
        )
    assert caught.value.errors == {"situation": "empty"}


def test_same_validators_as_the_bot(settings: Settings) -> None:
    future = (NOW + timedelta(days=62)).strftime("%m/%Y")
    with pytest.raises(staff_intake.InvalidSubmission) as caught:
        staff_intake.validate_answers(
            {**RAW, "since": future, "fiscal_code": "RSSMRA85D03F205X", "benefits": "none,naspi"},
            today=NOW.date(),
            settings=settings,
        )
    assert caught.value.errors == {
        "since": "future",
        "benefits": "exclusive",
        "fiscal_code": "check_character",
    }


@pytest.mark.parametrize(
    ("members", "minors", "raw"),
    [("3", "1", "3 1"), (" 2 ", "", "2 0"), ("", "", ""), ("3", "-1", "?"), ("x", "1", "?")],
)
def test_household_input(members: str, minors: str, raw: str) -> None:
    assert staff_intake.household_input(members, minors) == raw


async def test_duplicates_must_be_acknowledged(database: Database, settings: Settings) -> None:
    async with database.transaction() as session:
        known = await make_citizen(session, name="Maria R.")
        known.phone = "+393316938049"
        other = await make_citizen(session, name="Someone Else", telegram=False)
        other.fiscal_code = "RSSMRA85D03F205P"
        ids = {known.id, other.id}
    async with database.transaction() as session:
        with pytest.raises(staff_intake.DuplicatesFound) as caught:
            await submit(session, settings, acknowledged={known.id})
        assert {c.id for c in caught.value.duplicates} == ids
    async with database.transaction() as session:
        assert await count(session, Citizen) == 2
        done = await submit(session, settings, acknowledged=ids)
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "citizen.create")
        )
        assert event is not None
        assert event.details["duplicates_acknowledged"] == sorted(ids)
        again = await staff_intake.find_duplicates(
            session=session,
            phone=done.citizen.phone,
            fiscal_code=done.citizen.fiscal_code,
            exclude_citizen_id=done.citizen.id,
        )
        assert {c.id for c in again} == ids


async def test_get_submission_gives_the_reasons(session: AsyncSession, settings: Settings) -> None:
    done = await submit(session, settings, {**RAW, "residence": "no"}, channel="walk_in")
    found = await staff_intake.get_submission(
        session=session, settings=settings, citizen_id=done.citizen.id, staff=WORKER
    )
    assert found.citizen.channel == "walk_in"
    assert found.case_id == done.case_id is not None
    assert found.eligibility.eligible is False
    assert found.eligibility.reason_keys == ("not_resident",)
    telegram = await make_citizen(session)
    with pytest.raises(IntakeNotFound):
        await staff_intake.get_submission(
            session=session, settings=settings, citizen_id=telegram.id, staff=WORKER
        )


async def test_visible_as_the_case_is(session: AsyncSession, settings: Settings) -> None:
    done = await submit(session, settings)
    other = await staff.add_user(
        session=session, username="giulia", password=PASSWORD, role=Role.OPERATORE
    )
    case = await session.get(Case, done.case_id)
    assert case is not None
    case.assigned_to_id = other.id
    await session.flush()
    with pytest.raises(CaseNotVisible):
        await staff_intake.get_submission(
            session=session, settings=settings, citizen_id=done.citizen.id, staff=WORKER
        )
    theirs = access.StaffMember(user_id=other.id, role=Role.OPERATORE, actor="staff:giulia")
    coordinator = access.StaffMember(user_id=999, role=Role.COORDINATORE, actor="staff:c")
    for allowed in (theirs, coordinator):
        found = await staff_intake.get_submission(
            session=session, settings=settings, citizen_id=done.citizen.id, staff=allowed
        )
        assert found.citizen.id == done.citizen.id


async def test_booking_after_intake_uses_the_booking_rules(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    done = await submit(session, settings)
    slot = rome(2026, 5, 5, 9)
    booked = await staff_intake.book_after_intake(
        session=session, settings=settings, citizen_id=done.citizen.id,
        helpdesk_id=helpdesk.id, starts_at=slot, staff=WORKER, now=NOW,
    )  # fmt: skip
    assert (booked.citizen_id, booked.starts_at, booked.created_by) == (
        done.citizen.id,
        slot,
        ACTOR,
    )
    # No chat to confirm to: nothing is queued for a citizen who phoned.
    assert await count(session, OutboxMessage) == 0
    with pytest.raises(AlreadyBooked):
        await staff_intake.book_after_intake(
            session=session, settings=settings, citizen_id=done.citizen.id,
            helpdesk_id=helpdesk.id, starts_at=rome(2026, 5, 5, 10), staff=WORKER, now=NOW,
        )  # fmt: skip
    late = await submit(
        session, settings, {**RAW, "phone": "+39 02 1234 5678"}, acknowledged=[done.citizen.id]
    )
    with pytest.raises(SlotInPast):
        await staff_intake.book_after_intake(
            session=session, settings=settings, citizen_id=late.citizen.id,
            helpdesk_id=helpdesk.id, starts_at=rome(2026, 5, 1, 9), staff=WORKER, now=NOW,
        )  # fmt: skip
    assert await count(session, Booking) == 1


async def test_ineligible_citizens_do_not_book_from_the_intake(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    done = await submit(session, settings, {**RAW, "residence": "no"})
    with pytest.raises(NotAllowedToBook) as refused:
        await staff_intake.book_after_intake(
            session=session, settings=settings, citizen_id=done.citizen.id,
            helpdesk_id=helpdesk.id, starts_at=rome(2026, 5, 5, 9), staff=WORKER, now=NOW,
        )  # fmt: skip
    assert refused.value.code == "not_eligible"
    assert await count(session, Booking) == 0


async def test_a_coordinators_decision_opens_the_booking(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    done = await submit(session, settings, {**RAW, "residence": "no"})
    case = await session.get(Case, done.case_id)
    assert case is not None
    case.eligibility_override = True
    await session.flush()
    found = await staff_intake.get_submission(
        session=session, settings=settings, citizen_id=done.citizen.id, staff=WORKER
    )
    assert (found.eligibility.eligible, found.override, found.may_book) == (False, True, True)
    booked = await staff_intake.book_after_intake(
        session=session, settings=settings, citizen_id=done.citizen.id,
        helpdesk_id=helpdesk.id, starts_at=rome(2026, 5, 5, 9), staff=WORKER, now=NOW,
    )  # fmt: skip
    assert booked.citizen_id == done.citizen.id
