"""The intake engine: a small state machine over the questionnaire, with its state in the database.

The bot and the staff form both drive it; each call reads and writes the intake in the
caller's transaction (services never commit), so a restart or a second instance loses
nothing. How it moves:

- `answers` holds every step answered (a skipped optional step holds None), `history` the
  order they were given in.
- The step asked next is always the first step, in questionnaire order, that applies to
  the answers so far and has no answer yet; when none is left the intake is in the summary.
- An answer or a skip is accepted only for the step being asked, so a stale button from an
  older message can't change anything.
- An answer the eligibility rules refuse ends the questions there: the citizen is asked
  whether they want to leave their name and phone for a case worker, and the questionnaire
  closes (as `confirm` does) as soon as what they chose to give is given, keeping only the
  answers asked on that way (`questionnaire.asked_steps`).
- Going back removes the latest answer and asks that step again.
- Changing an answer from the summary asks that step again and keeps the old answer until
  a new one arrives (going back cancels the change). Answers to steps that no longer apply
  are dropped; steps that now apply are asked before the summary comes back.
- Any activity clears `expiry_reminded_at`: a citizen who stalls again is reminded again.

A caller that has already read the intake with `get_intake(for_update=True)` (the bot, to
decide what a button means) passes it as `intake=`, so that an update reads the row once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking import places
from shared.cases import service as cases
from shared.citizens.models import Citizen
from shared.db import upsert_insert
from shared.intake import tally
from shared.intake.errors import (
    CannotGoBack,
    IncompleteAnswers,
    IntakeNotFound,
    NotCurrentStep,
    StepNotAsked,
    StepNotOptional,
    UnknownCitizen,
    WrongState,
)
from shared.intake.models import UNFINISHED, Intake, IntakeState
from shared.intake.questionnaire import (
    CONTACT_OFFER,
    QUESTIONNAIRE,
    Answer,
    Eligibility,
    Step,
    asked_steps,
    assess,
    ruled_out,
    step,
)
from shared.intake.validators import validate

if TYPE_CHECKING:
    from shared.settings import Settings

# Answers that confirming copies onto the citizen (the step keys are the column names).
CITIZEN_FIELDS = ("name", "phone", "email", "fiscal_code")

_STEPS = {s.key: s for s in (*QUESTIONNAIRE, CONTACT_OFFER)}


class Outcome(NamedTuple):
    intake: Intake
    eligibility: Eligibility


async def get_intake(
    *, session: AsyncSession, citizen_id: int, for_update: bool = False
) -> Intake | None:
    """The citizen's questionnaire, if they have one (locked for the transaction on request)."""
    query = select(Intake).where(Intake.citizen_id == citizen_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def start_intake(*, session: AsyncSession, citizen_id: int, now: datetime) -> Intake:
    """Start the questionnaire from the first question, forgetting any earlier answers."""
    if await session.get(Citizen, citizen_id) is None:
        raise UnknownCitizen(citizen_id)
    fresh = Intake(
        citizen_id=citizen_id,
        answers={},
        history=[],
        started_at=now,
        completed_at=None,
        eligible=None,
        urgent=False,
    )
    _advance(fresh, now)
    values = {c.key: getattr(fresh, c.key) for c in Intake.__table__.columns if c.key != "id"}
    # One statement, new or not: the citizen has at most one intake, started again here.
    upsert = upsert_insert(session, Intake).values(**values)
    upsert = upsert.on_conflict_do_update(
        index_elements=[Intake.citizen_id],
        set_={key: upsert.excluded[key] for key in values if key != "citizen_id"},
    )
    started: Intake | None = await session.scalar(
        upsert.returning(Intake), execution_options={"populate_existing": True}
    )
    assert started is not None
    return started


def current_step(intake: Intake) -> Step | None:
    """The step being asked, or None when the questionnaire is not in progress."""
    if intake.state != IntakeState.IN_PROGRESS:
        return None
    stored = _STEPS.get(intake.current_step or "")
    if stored is not None and stored in asked_steps(intake.answers):
        return stored
    # The definition changed under a paused questionnaire: fall back to the rule.
    key = _next_key(intake.answers)
    return step(key) if key is not None else None


async def record_answer(
    *,
    session: AsyncSession,
    citizen_id: int,
    step_key: str,
    raw: str,
    now: datetime,
    settings: Settings,
    intake: Intake | None = None,
) -> Intake:
    """Check and store the answer to the step being asked, then move to the next step.

    The last answer a citizen ruled out gives closes the questionnaire, as `confirm` does.
    """
    intake = await _require(session, citizen_id, intake)
    asked = _asked_step(intake, step_key, action="answer")
    value = validate(asked, raw, today=now.astimezone(settings.tz).date(), settings=settings)
    _store(intake, asked.key, value, now)
    await session.flush()
    if intake.state == IntakeState.SUMMARY and ruled_out(intake.answers):
        await _close(session, intake, now, settings)
    return intake


async def skip_step(
    *,
    session: AsyncSession,
    citizen_id: int,
    step_key: str,
    now: datetime,
    intake: Intake | None = None,
) -> Intake:
    """Leave the optional step being asked (e-mail, fiscal code) unanswered and move on."""
    intake = await _require(session, citizen_id, intake)
    asked = _asked_step(intake, step_key, action="skip a step of")
    if not asked.optional:
        raise StepNotOptional(asked.key)
    _store(intake, asked.key, None, now)
    await session.flush()
    return intake


async def go_back(
    *, session: AsyncSession, citizen_id: int, now: datetime, intake: Intake | None = None
) -> Intake:
    """Ask the previous question again (from the summary: the last one answered)."""
    intake = await _require(session, citizen_id, intake)
    if intake.state not in UNFINISHED:
        raise WrongState(intake.state, "go back in")
    asked = current_step(intake)
    if asked is not None and asked.key in intake.answers:
        # Back while changing an answer from the summary: keep the old one.
        _advance(intake, now)
    elif not intake.history:
        raise CannotGoBack("already at the first question")
    else:
        *history, last = intake.history
        intake.history = history
        intake.answers = {k: v for k, v in intake.answers.items() if k != last}
        intake.state = IntakeState.IN_PROGRESS.value
        intake.current_step = last
        _touch(intake, now)
    await session.flush()
    return intake


async def change_answer(
    *,
    session: AsyncSession,
    citizen_id: int,
    step_key: str,
    now: datetime,
    intake: Intake | None = None,
) -> Intake:
    """From the summary, ask one step again; the summary comes back once it is answered."""
    intake = await _require(session, citizen_id, intake)
    if intake.state != IntakeState.SUMMARY:
        raise WrongState(intake.state, "change an answer of")
    changed = step(step_key)
    if changed not in asked_steps(intake.answers):
        raise StepNotAsked(changed.key)
    intake.state = IntakeState.IN_PROGRESS.value
    intake.current_step = changed.key
    _touch(intake, now)
    await session.flush()
    return intake


async def confirm(
    *,
    session: AsyncSession,
    citizen_id: int,
    now: datetime,
    settings: Settings,
    intake: Intake | None = None,
) -> Outcome:
    """Close the questionnaire: record eligibility and urgency, copy the contacts to the citizen.

    A skipped e-mail or fiscal code leaves what the citizen record already had.
    """
    intake = await _require(session, citizen_id, intake)
    if intake.state != IntakeState.SUMMARY:
        raise WrongState(intake.state, "confirm")
    missing = tuple(s.key for s in asked_steps(intake.answers) if s.key not in intake.answers)
    if missing:
        raise IncompleteAnswers(missing)
    return await _close(session, intake, now, settings)


async def expire_stale(
    *, session: AsyncSession, now: datetime, max_age: timedelta, tz: ZoneInfo
) -> list[int]:
    """Delete the answers of questionnaires left unfinished for `max_age`; their citizens' ids.

    Where each stood is counted first, anonymously (`tally.on_expiry`, by the local day in
    `tz` it was started), for the figures' drop-off per question.
    """
    stale = list(
        await session.scalars(
            select(Intake).where(_stale(now, max_age)).order_by(Intake.id).with_for_update()
        )
    )
    await tally.on_expiry(session=session, intakes=stale, tz=tz)
    expired = []
    for intake in stale:
        intake.state = IntakeState.EXPIRED.value
        intake.current_step = None
        intake.answers = {}
        intake.history = []
        intake.updated_at = now
        expired.append(intake.citizen_id)
    await session.flush()
    return expired


async def count_stale(*, session: AsyncSession, now: datetime, max_age: timedelta) -> int:
    """How many questionnaires `expire_stale` would wipe at `now` (retention's dry run)."""
    return await session.scalar(select(func.count()).where(_stale(now, max_age))) or 0


def _stale(now: datetime, max_age: timedelta) -> ColumnElement[bool]:
    return and_(Intake.state.in_(UNFINISHED), Intake.updated_at < now - max_age)


async def due_expiry_reminders(
    *, session: AsyncSession, now: datetime, max_age: timedelta, remind_before: timedelta
) -> list[Intake]:
    """Unfinished questionnaires expiring within `remind_before`; each is returned only once."""
    if not timedelta(0) < remind_before < max_age:
        raise ValueError("remind_before must be positive and shorter than max_age")
    due = await session.scalars(
        select(Intake)
        .where(
            Intake.state.in_(UNFINISHED),
            Intake.expiry_reminded_at.is_(None),
            Intake.updated_at <= now - (max_age - remind_before),
            # Older ones are expiring now: a reminder would come too late.
            Intake.updated_at >= now - max_age,
        )
        .order_by(Intake.updated_at, Intake.id)
        .with_for_update()
    )
    reminded = list(due)
    for intake in reminded:
        intake.expiry_reminded_at = now
    await session.flush()
    return reminded


# --- internals ---------------------------------------------------------------------------


async def _close(
    session: AsyncSession, intake: Intake, now: datetime, settings: Settings
) -> Outcome:
    """Record the outcome of an answered questionnaire; the citizen's case opens or is updated.

    A citizen ruled out keeps only the answers asked on their way (the ones that decided,
    the offer, and the contacts if they chose to leave them): nothing else is needed.
    """
    if ruled_out(intake.answers):
        asked = {s.key for s in asked_steps(intake.answers)}
        intake.answers = {k: v for k, v in intake.answers.items() if k in asked}
        intake.history = [k for k in intake.history if k in asked]
    citizen_id = intake.citizen_id
    eligibility = assess(intake.answers, settings)
    intake.state = IntakeState.COMPLETED.value
    intake.current_step = None
    intake.completed_at = now
    intake.updated_at = now
    intake.eligible = eligibility.eligible
    intake.urgent = eligibility.urgent
    citizen = await session.get(Citizen, citizen_id)
    if citizen is None:
        raise UnknownCitizen(citizen_id)
    for field in CITIZEN_FIELDS:
        value = intake.answers.get(field)
        if isinstance(value, str):
            setattr(citizen, field, value)
    citizen.urgent = eligibility.urgent
    await places.follow_urgency(session=session, citizen_id=citizen_id, urgent=eligibility.urgent)
    await session.flush()
    await cases.on_intake_confirmed(
        session=session,
        citizen_id=citizen_id,
        eligible=eligibility.eligible,
        urgent=eligibility.urgent,
        now=now,
    )
    return Outcome(intake, eligibility)


async def _require(session: AsyncSession, citizen_id: int, loaded: Intake | None) -> Intake:
    """The citizen's intake, locked: `loaded` if the caller already has it, else read now."""
    if loaded is not None:
        if loaded.citizen_id != citizen_id:
            raise ValueError(f"intake {loaded.id} is not citizen {citizen_id}'s")
        return loaded
    intake = await get_intake(session=session, citizen_id=citizen_id, for_update=True)
    if intake is None:
        raise IntakeNotFound(citizen_id)
    return intake


def _asked_step(intake: Intake, step_key: str, *, action: str) -> Step:
    if intake.state != IntakeState.IN_PROGRESS:
        raise WrongState(intake.state, action)
    asked = current_step(intake)
    if asked is None or asked.key != step_key:
        raise NotCurrentStep(step_key, asked.key if asked is not None else None)
    return asked


def _next_key(answers: dict[str, Any]) -> str | None:
    return next((s.key for s in asked_steps(answers) if s.key not in answers), None)


def _applicable(answers: dict[str, Any]) -> dict[str, Any]:
    """The answers without those of steps that no longer apply.

    Answers past the one that ruled the citizen out are kept until the questionnaire
    closes: going back to a mistaken "no" must not lose them.
    """
    kept: dict[str, Any] = {}
    for s in QUESTIONNAIRE:
        # Conditions look only at earlier steps, which are already decided.
        if s.key in answers and s.applies(kept):
            kept[s.key] = answers[s.key]
    if CONTACT_OFFER.key in answers and ruled_out(kept):
        kept[CONTACT_OFFER.key] = answers[CONTACT_OFFER.key]
    # Answers to steps no longer in the definition stay for staff to see.
    return kept | {k: v for k, v in answers.items() if k not in _STEPS}


def _store(intake: Intake, key: str, value: Answer, now: datetime) -> None:
    answers = _applicable({**intake.answers, key: value})
    intake.answers = answers
    intake.history = [k for k in intake.history if k != key and k in answers] + [key]
    _advance(intake, now)


def _advance(intake: Intake, now: datetime) -> None:
    key = _next_key(intake.answers)
    intake.current_step = key
    intake.state = (IntakeState.IN_PROGRESS if key is not None else IntakeState.SUMMARY).value
    _touch(intake, now)


def _touch(intake: Intake, now: datetime) -> None:
    intake.updated_at = now
    intake.expiry_reminded_at = None
