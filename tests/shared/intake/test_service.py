from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.cases import service as cases
from shared.citizens.models import Citizen
from shared.db import Database
from shared.intake import service as intake
from shared.intake.errors import (
    CannotGoBack,
    IncompleteAnswers,
    IntakeNotFound,
    InvalidAnswer,
    NotCurrentStep,
    StepNotAsked,
    StepNotOptional,
    UnknownCitizen,
    UnknownStep,
    WrongState,
)
from shared.intake.models import Intake, IntakeState
from shared.intake.questionnaire import assess, summary
from shared.settings import Settings

NOW = datetime(2024, 5, 10, 9, 30, tzinfo=UTC)

# Raw answers as a citizen would type or tap them, for an eligible and urgent candidate.
PATH = [
    ("residence", "yes"),
    ("situation", "job_loss"),
    ("since", "marzo 2021"),
    ("pandemic_related", "yes"),
    ("household", "3 e 1"),
    ("benefits", "naspi"),
    ("needs", "job_search,economic_support"),
    ("urgent", "yes"),
    ("name", "  Maria   Rossi "),
    ("phone", "331 693 8049"),
    ("email", "Maria.Rossi@Example.COM"),
    ("fiscal_code", "rssmra85d03f205p"),
]
STORED = {
    "residence": "yes",
    "situation": "job_loss",
    "since": "2021-03",
    "pandemic_related": "yes",
    "household": {"members": 3, "minors": 1},
    "benefits": ["naspi"],
    "needs": ["economic_support", "job_search"],
    "urgent": "yes",
    "name": "Maria Rossi",
    "phone": "+393316938049",
    "email": "Maria.Rossi@example.com",
    "fiscal_code": "RSSMRA85D03F205P",
}


async def new_citizen(session: AsyncSession, telegram_user_id: int = 1001) -> int:
    citizen = Citizen(telegram_user_id=telegram_user_id, telegram_chat_id=telegram_user_id)
    session.add(citizen)
    await session.flush()
    return citizen.id


async def answer(
    session: AsyncSession,
    settings: Settings,
    citizen_id: int,
    answers: list[tuple[str, str]],
    now: datetime = NOW,
) -> Intake:
    result = None
    for key, raw in answers:
        result = await intake.record_answer(
            session=session,
            citizen_id=citizen_id,
            step_key=key,
            raw=raw,
            now=now,
            settings=settings,
        )
    assert result is not None
    return result


def asked(row: Intake) -> str | None:
    current = intake.current_step(row)
    return current.key if current is not None else None


async def test_whole_path_to_summary_and_confirm(session: AsyncSession, settings: Settings) -> None:
    citizen_id = await new_citizen(session)
    row = await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    assert row.state == IntakeState.IN_PROGRESS
    assert asked(row) == row.current_step == "residence"

    for key, raw in PATH:
        assert asked(row) == key
        row = await answer(session, settings, citizen_id, [(key, raw)])
    assert row.state == IntakeState.SUMMARY
    assert row.current_step is None
    assert intake.current_step(row) is None
    assert row.answers == STORED
    assert row.history == [key for key, _ in PATH]
    assert row.eligible is None

    later = NOW + timedelta(minutes=5)
    outcome = await intake.confirm(
        session=session, citizen_id=citizen_id, now=later, settings=settings
    )
    assert outcome.eligibility.eligible
    assert outcome.eligibility.urgent
    assert outcome.intake is row
    assert row.state == IntakeState.COMPLETED
    assert (row.eligible, row.urgent, row.completed_at) == (True, True, later)

    citizen = await session.get(Citizen, citizen_id)
    assert citizen is not None
    assert (citizen.name, citizen.phone, citizen.email, citizen.fiscal_code, citizen.urgent) == (
        "Maria Rossi",
        "+393316938049",
        "Maria.Rossi@example.com",
        "RSSMRA85D03F205P",
        True,
    )
    with pytest.raises(WrongState):
        await answer(session, settings, citizen_id, [("residence", "no")])
    with pytest.raises(WrongState):
        await intake.confirm(session=session, citizen_id=citizen_id, now=later, settings=settings)


async def test_other_situation_ends_the_questions_with_the_offer(
    session: AsyncSession, settings: Settings
) -> None:
    citizen_id = await new_citizen(session)
    await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    row = await answer(
        session, settings, citizen_id, [("residence", "yes"), ("situation", "other")]
    )
    # "Other" can't take part: no more questions about their life, only the offer.
    assert asked(row) == "contact_offer"
    with pytest.raises(NotCurrentStep):
        await answer(session, settings, citizen_id, [("since", "03/2021")])
    with pytest.raises(NotCurrentStep):
        await answer(session, settings, citizen_id, [("household", "3 1")])
    row = await answer(session, settings, citizen_id, [("contact_offer", "no")])
    assert row.state == IntakeState.COMPLETED
    assert row.eligible is False
    assert row.answers == {"residence": "yes", "situation": "other", "contact_offer": "no"}
    assert assess(row.answers, settings).reason_keys == ("situation_not_covered",)


async def test_a_refused_answer_asks_only_name_and_phone_if_the_citizen_wants(
    session: AsyncSession, settings: Settings
) -> None:
    citizen_id = await new_citizen(session)
    await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    row = await answer(session, settings, citizen_id, [("residence", "no")])
    assert asked(row) == "contact_offer"
    row = await answer(session, settings, citizen_id, [("contact_offer", "yes")])
    assert asked(row) == "name"
    row = await answer(session, settings, citizen_id, [("name", "Maria Rossi")])
    assert asked(row) == "phone"
    later = NOW + timedelta(minutes=3)
    row = await answer(session, settings, citizen_id, [("phone", "331 693 8049")], now=later)
    # Closed at once, as a confirmation would: not eligible, the case open for staff.
    assert (row.state, row.eligible, row.completed_at) == (IntakeState.COMPLETED, False, later)
    assert row.answers == {
        "residence": "no",
        "contact_offer": "yes",
        "name": "Maria Rossi",
        "phone": "+393316938049",
    }
    assert row.history == ["residence", "contact_offer", "name", "phone"]
    citizen = await session.get(Citizen, citizen_id)
    assert citizen is not None
    assert (citizen.name, citizen.phone) == ("Maria Rossi", "+393316938049")
    case = await cases.open_case_of(session=session, citizen_id=citizen_id)
    assert case is not None and case.eligible is False
    assert assess(row.answers, settings).reason_keys == ("not_resident",)
    # Staff see the offer and the contacts among the answers.
    assert summary(row.answers, "it") == [
        ("Residenza", "No"),
        ("Chiede una chiamata", "Sì, grazie"),
        ("Nome e cognome", "Maria Rossi"),
        ("Telefono", "+39 331 693 8049"),
    ]


async def test_declining_the_offer_keeps_no_contacts_even_ones_given_before(
    session: AsyncSession, settings: Settings
) -> None:
    citizen_id = await new_citizen(session)
    await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    await answer(session, settings, citizen_id, PATH)
    # From the summary, the residence changed to "no": the offer, then nothing else is kept.
    await intake.change_answer(
        session=session, citizen_id=citizen_id, step_key="residence", now=NOW
    )
    row = await answer(session, settings, citizen_id, [("residence", "no")])
    assert (row.state, asked(row)) == (IntakeState.IN_PROGRESS, "contact_offer")
    row = await answer(session, settings, citizen_id, [("contact_offer", "no")])
    assert (row.state, row.eligible) == (IntakeState.COMPLETED, False)
    assert row.answers == {"residence": "no", "contact_offer": "no"}
    assert row.history == ["residence", "contact_offer"]
    citizen = await session.get(Citizen, citizen_id)
    assert citizen is not None
    assert (citizen.name, citizen.phone, citizen.email, citizen.fiscal_code) == (
        None,
        None,
        None,
        None,
    )
    assert await cases.open_case_of(session=session, citizen_id=citizen_id) is not None


async def test_back_from_the_offer_undoes_a_mistaken_answer(
    session: AsyncSession, settings: Settings
) -> None:
    citizen_id = await new_citizen(session)
    await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    await answer(session, settings, citizen_id, PATH[:2])
    row = await answer(session, settings, citizen_id, [("since", "03/2021")])
    row = await answer(session, settings, citizen_id, [("pandemic_related", "no")])
    assert asked(row) == "contact_offer"
    row = await intake.go_back(session=session, citizen_id=citizen_id, now=NOW)
    assert asked(row) == "pandemic_related"
    row = await answer(session, settings, citizen_id, [("pandemic_related", "not_sure")])
    assert asked(row) == "household"
    row = await answer(session, settings, citizen_id, PATH[4:])
    assert row.state == IntakeState.SUMMARY
    assert "contact_offer" not in row.answers


async def test_optional_steps_can_be_skipped_and_others_cannot(
    session: AsyncSession, settings: Settings
) -> None:
    citizen_id = await new_citizen(session)
    citizen = await session.get(Citizen, citizen_id)
    assert citizen is not None
    citizen.email = "old@example.com"
    await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    with pytest.raises(StepNotOptional):
        await intake.skip_step(
            session=session, citizen_id=citizen_id, step_key="residence", now=NOW
        )
    await answer(session, settings, citizen_id, PATH[:10])
    with pytest.raises(NotCurrentStep):
        await intake.skip_step(
            session=session, citizen_id=citizen_id, step_key="fiscal_code", now=NOW
        )
    for key in ("email", "fiscal_code"):
        row = await intake.skip_step(session=session, citizen_id=citizen_id, step_key=key, now=NOW)
    assert row.state == IntakeState.SUMMARY
    assert row.answers["email"] is None and row.answers["fiscal_code"] is None
    await intake.confirm(session=session, citizen_id=citizen_id, now=NOW, settings=settings)
    # A skipped optional answer leaves what the citizen record had.
    assert (citizen.email, citizen.fiscal_code) == ("old@example.com", None)


async def test_go_back_asks_the_previous_step_again(
    session: AsyncSession, settings: Settings
) -> None:
    citizen_id = await new_citizen(session)
    await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    with pytest.raises(CannotGoBack):
        await intake.go_back(session=session, citizen_id=citizen_id, now=NOW)

    row = await answer(session, settings, citizen_id, PATH[:4])
    assert asked(row) == "household"
    row = await intake.go_back(session=session, citizen_id=citizen_id, now=NOW)
    assert asked(row) == "pandemic_related"
    assert "pandemic_related" not in row.answers
    row = await intake.go_back(session=session, citizen_id=citizen_id, now=NOW)
    assert asked(row) == "since"
    # Going forward again passes through every step that was gone back over.
    row = await answer(session, settings, citizen_id, [("since", "04/2021")])
    assert asked(row) == "pandemic_related"
    row = await answer(session, settings, citizen_id, [("pandemic_related", "not_sure")])
    assert asked(row) == "household"
    assert row.answers == {
        "residence": "yes",
        "situation": "job_loss",
        "since": "2021-04",
        "pandemic_related": "not_sure",
    }
    assert row.history == ["residence", "situation", "since", "pandemic_related"]


async def test_go_back_from_the_summary(session: AsyncSession, settings: Settings) -> None:
    citizen_id = await new_citizen(session)
    await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    await answer(session, settings, citizen_id, PATH)
    row = await intake.go_back(session=session, citizen_id=citizen_id, now=NOW)
    assert row.state == IntakeState.IN_PROGRESS
    assert asked(row) == "fiscal_code"
    row = await intake.skip_step(
        session=session, citizen_id=citizen_id, step_key="fiscal_code", now=NOW
    )
    assert row.state == IntakeState.SUMMARY


async def test_change_an_answer_from_the_summary(session: AsyncSession, settings: Settings) -> None:
    citizen_id = await new_citizen(session)
    await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    with pytest.raises(WrongState):
        await intake.change_answer(
            session=session, citizen_id=citizen_id, step_key="household", now=NOW
        )
    await answer(session, settings, citizen_id, PATH)

    row = await intake.change_answer(
        session=session, citizen_id=citizen_id, step_key="household", now=NOW
    )
    assert row.state == IntakeState.IN_PROGRESS
    assert asked(row) == "household"
    with pytest.raises(NotCurrentStep):
        await answer(session, settings, citizen_id, [("name", "Anna Bianchi")])
    row = await answer(session, settings, citizen_id, [("household", "4 2")])
    assert row.state == IntakeState.SUMMARY
    assert row.answers == STORED | {"household": {"members": 4, "minors": 2}}

    with pytest.raises(UnknownStep):
        await intake.change_answer(
            session=session, citizen_id=citizen_id, step_key="shoe_size", now=NOW
        )


async def test_changing_the_situation_drops_and_adds_conditional_steps(
    session: AsyncSession, settings: Settings
) -> None:
    citizen_id = await new_citizen(session)
    await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    await answer(session, settings, citizen_id, PATH)

    # To "other": the job-loss questions no longer apply and their answers go; "other"
    # rules the citizen out, so the offer is asked.
    await intake.change_answer(
        session=session, citizen_id=citizen_id, step_key="situation", now=NOW
    )
    row = await answer(session, settings, citizen_id, [("situation", "other")])
    assert asked(row) == "contact_offer"
    assert "since" not in row.answers and "pandemic_related" not in row.answers
    assert "since" not in row.history

    # Back, and a covered situation instead: they are asked again before the summary returns.
    row = await intake.go_back(session=session, citizen_id=citizen_id, now=NOW)
    assert asked(row) == "situation"
    row = await answer(session, settings, citizen_id, [("situation", "reduced_hours")])
    assert row.state == IntakeState.IN_PROGRESS
    assert asked(row) == "since"
    row = await answer(session, settings, citizen_id, [("since", "06/2020")])
    assert asked(row) == "pandemic_related"
    row = await answer(session, settings, citizen_id, [("pandemic_related", "yes")])
    assert row.state == IntakeState.SUMMARY
    assert row.answers == STORED | {"situation": "reduced_hours", "since": "2020-06"}
    with pytest.raises(StepNotAsked):
        await intake.change_answer(
            session=session, citizen_id=citizen_id, step_key="contact_offer", now=NOW
        )
    outcome = await intake.confirm(
        session=session, citizen_id=citizen_id, now=NOW, settings=settings
    )
    assert outcome.eligibility.eligible


async def test_going_back_while_changing_keeps_the_old_answer(
    session: AsyncSession, settings: Settings
) -> None:
    citizen_id = await new_citizen(session)
    await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    await answer(session, settings, citizen_id, PATH)
    await intake.change_answer(session=session, citizen_id=citizen_id, step_key="needs", now=NOW)
    row = await intake.go_back(session=session, citizen_id=citizen_id, now=NOW)
    assert row.state == IntakeState.SUMMARY
    assert row.answers == STORED


async def test_an_answer_for_another_step_is_refused_and_changes_nothing(
    database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        citizen_id = await new_citizen(session)
        await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
        await answer(session, settings, citizen_id, PATH[:3])

    later = NOW + timedelta(hours=1)
    for key, raw in [("residence", "no"), ("household", "2 0"), ("nonsense", "x"), ("since", "")]:
        async with database.transaction() as session:
            with pytest.raises(NotCurrentStep) as error:
                await answer(session, settings, citizen_id, [(key, raw)], now=later)
            assert error.value.current == "pandemic_related"
    # An invalid answer to the right step changes nothing either.
    async with database.transaction() as session:
        with pytest.raises(InvalidAnswer) as invalid:
            await answer(
                session, settings, citizen_id, [("pandemic_related", "perhaps")], now=later
            )
        assert invalid.value.reason == "unknown_option"

    async with database.transaction(read_only=True) as session:
        row = await intake.get_intake(session=session, citizen_id=citizen_id)
        assert row is not None
        assert row.answers == {k: STORED[k] for k, _ in PATH[:3]}
        assert row.current_step == "pandemic_related"
        assert row.updated_at == NOW


async def test_restart_clears_everything(session: AsyncSession, settings: Settings) -> None:
    citizen_id = await new_citizen(session)
    first = await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    await answer(session, settings, citizen_id, PATH)
    await intake.confirm(session=session, citizen_id=citizen_id, now=NOW, settings=settings)

    later = NOW + timedelta(days=3)
    row = await intake.start_intake(session=session, citizen_id=citizen_id, now=later)
    assert row.id == first.id
    assert row.state == IntakeState.IN_PROGRESS
    assert (row.answers, row.history, row.current_step) == ({}, [], "residence")
    assert (row.started_at, row.updated_at, row.completed_at) == (later, later, None)
    assert (row.eligible, row.urgent) == (None, False)
    assert len((await session.scalars(select(Intake))).all()) == 1


async def test_unknown_citizen_and_missing_intake(
    session: AsyncSession, settings: Settings
) -> None:
    with pytest.raises(UnknownCitizen):
        await intake.start_intake(session=session, citizen_id=424242, now=NOW)
    citizen_id = await new_citizen(session)
    assert await intake.get_intake(session=session, citizen_id=citizen_id) is None
    with pytest.raises(IntakeNotFound):
        await answer(session, settings, citizen_id, PATH[:1])
    with pytest.raises(IntakeNotFound):
        await intake.go_back(session=session, citizen_id=citizen_id, now=NOW)


async def test_confirm_needs_the_summary(session: AsyncSession, settings: Settings) -> None:
    citizen_id = await new_citizen(session)
    row = await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    with pytest.raises(WrongState):
        await intake.confirm(session=session, citizen_id=citizen_id, now=NOW, settings=settings)
    # A summary that lost an answer (e.g. edited by hand) is not confirmed.
    row.state = IntakeState.SUMMARY.value
    row.answers = {"residence": "yes"}
    with pytest.raises(IncompleteAnswers) as error:
        await intake.confirm(session=session, citizen_id=citizen_id, now=NOW, settings=settings)
    assert error.value.missing[0] == "situation"


async def test_a_new_transaction_resumes_where_the_citizen_stopped(
    database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        citizen_id = await new_citizen(session)
        await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
        await answer(session, settings, citizen_id, PATH[:6])

    # Days later, maybe another process: everything comes from the database.
    later = NOW + timedelta(days=4)
    async with database.transaction() as session:
        row = await intake.get_intake(session=session, citizen_id=citizen_id)
        assert row is not None
        assert row.state == IntakeState.IN_PROGRESS
        assert asked(row) == "needs"
        assert row.answers == {k: STORED[k] for k, _ in PATH[:6]}
        await answer(session, settings, citizen_id, PATH[6:], now=later)

    async with database.transaction() as session:
        row = await intake.get_intake(session=session, citizen_id=citizen_id)
        assert row is not None
        assert row.state == IntakeState.SUMMARY
        assert row.answers == STORED
        assert row.history == [key for key, _ in PATH]
        assert row.updated_at == later
        outcome = await intake.confirm(
            session=session, citizen_id=citizen_id, now=later, settings=settings
        )
        assert outcome.eligibility.eligible


async def test_expire_stale_deletes_only_old_unfinished_answers(
    database: Database, settings: Settings
) -> None:
    old = NOW - timedelta(days=31)
    async with database.transaction() as session:
        stale_in_progress = await new_citizen(session, 1)
        stale_summary = await new_citizen(session, 2)
        old_completed = await new_citizen(session, 3)
        recent = await new_citizen(session, 4)
        for citizen_id in (stale_in_progress, stale_summary, old_completed):
            await intake.start_intake(session=session, citizen_id=citizen_id, now=old)
        await answer(session, settings, stale_in_progress, PATH[:5], now=old)
        await answer(session, settings, stale_summary, PATH, now=old)
        await answer(session, settings, old_completed, PATH, now=old)
        await intake.confirm(session=session, citizen_id=old_completed, now=old, settings=settings)
        await intake.start_intake(session=session, citizen_id=recent, now=NOW - timedelta(days=29))
        await answer(session, settings, recent, PATH[:2], now=NOW - timedelta(days=29))

    async with database.transaction() as session:
        expired = await intake.expire_stale(
            session=session, now=NOW, max_age=timedelta(days=30), tz=settings.tz
        )
    assert sorted(expired) == sorted([stale_in_progress, stale_summary])

    async with database.transaction(read_only=True) as session:
        rows = {r.citizen_id: r for r in (await session.scalars(select(Intake))).all()}
    for citizen_id in expired:
        row = rows[citizen_id]
        assert row.state == IntakeState.EXPIRED
        assert (row.answers, row.history, row.current_step) == ({}, [], None)
    assert rows[old_completed].state == IntakeState.COMPLETED
    assert rows[old_completed].answers == STORED
    assert rows[recent].state == IntakeState.IN_PROGRESS
    assert rows[recent].answers == {"residence": "yes", "situation": "job_loss"}

    async with database.transaction() as session:
        assert (
            await intake.expire_stale(
                session=session, now=NOW, max_age=timedelta(days=30), tz=settings.tz
            )
            == []
        )
        with pytest.raises(WrongState):
            await answer(session, settings, stale_in_progress, PATH[5:6])
        # An expired questionnaire can be started again from the beginning.
        row = await intake.start_intake(session=session, citizen_id=stale_in_progress, now=NOW)
        assert row.state == IntakeState.IN_PROGRESS
        assert asked(row) == "residence"


async def test_expiry_reminders_are_returned_once(database: Database, settings: Settings) -> None:
    max_age, remind_before = timedelta(days=30), timedelta(days=2)
    async with database.transaction() as session:
        due = await new_citizen(session, 1)
        fresh = await new_citizen(session, 2)
        done = await new_citizen(session, 3)
        too_late = await new_citizen(session, 4)
        await intake.start_intake(session=session, citizen_id=due, now=NOW - timedelta(days=29))
        await intake.start_intake(session=session, citizen_id=fresh, now=NOW - timedelta(days=27))
        await intake.start_intake(session=session, citizen_id=done, now=NOW - timedelta(days=29))
        await answer(session, settings, done, PATH, now=NOW - timedelta(days=29))
        await intake.confirm(
            session=session, citizen_id=done, now=NOW - timedelta(days=29), settings=settings
        )
        await intake.start_intake(
            session=session, citizen_id=too_late, now=NOW - timedelta(days=31)
        )

    async with database.transaction() as session:
        reminded = await intake.due_expiry_reminders(
            session=session, now=NOW, max_age=max_age, remind_before=remind_before
        )
        assert [r.citizen_id for r in reminded] == [due]
        assert reminded[0].expiry_reminded_at == NOW
    async with database.transaction() as session:
        again = await intake.due_expiry_reminders(
            session=session,
            now=NOW + timedelta(hours=1),
            max_age=max_age,
            remind_before=remind_before,
        )
        assert again == []

    # Answering again restarts the clock, so stalling again earns a new reminder.
    async with database.transaction() as session:
        await answer(session, settings, due, PATH[:1], now=NOW + timedelta(hours=2))
    async with database.transaction() as session:
        reminded = await intake.due_expiry_reminders(
            session=session,
            now=NOW + timedelta(days=29),
            max_age=max_age,
            remind_before=remind_before,
        )
        assert [r.citizen_id for r in reminded] == [due]

    async with database.transaction() as session:
        with pytest.raises(ValueError, match="remind_before"):
            await intake.due_expiry_reminders(
                session=session, now=NOW, max_age=max_age, remind_before=max_age
            )


async def test_deleting_the_citizen_deletes_the_intake(
    database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        citizen_id = await new_citizen(session)
        await intake.start_intake(session=session, citizen_id=citizen_id, now=NOW)
    async with database.transaction() as session:
        citizen = await session.get(Citizen, citizen_id)
        await session.delete(citizen)
    async with database.transaction(read_only=True) as session:
        assert (await session.scalars(select(Intake))).all() == []
