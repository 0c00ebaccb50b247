"""A citizen's copy of their data (right of access, GDPR art. 15): `/miei_dati` in the bot.

`collect` reads what the program holds about one citizen and builds it twice from the
same rows, in the citizen's language: `MyData.record`, plain JSON values (stored keys
and codes, ISO times in the program's time zone, with the words people read beside
them), and `MyData.parts`, the same as titled (label, value) rows for reading. The
renderers only lay those out: `as_json` (a file for other software, portability) and
`as_pdf` (an A4 document in the plan's font). `export` does all three and records the
access (`citizen.data_export`, ids only). Nothing here commits or logs what it read.

Included, everything that is about the citizen:
- who they are: name, phone, e-mail, fiscal code, language, channel, Telegram user id,
  when they registered, whether they are marked urgent or unreachable;
- the privacy notice they accepted: its version and when;
- the questionnaire: its state and dates, the eligibility outcome, and every answer
  with the question's title (`questionnaire.summary`, the labels the bot shows);
- every booking (code, time, helpdesk, state, who booked it, why it was cancelled, the
  booking it replaced) and every waiting-list entry;
- every case: state, dates, the questionnaire's outcome and a coordinator's decision
  with its reason, the case worker, the reason given at closing; its interview (every
  field filled in, with the form's labels, the staff's notes included: they are about
  the citizen, and no rule here keeps them back), outcome and its reason; its plan
  (situation, objectives, commitments, supports with their details, team, reviews with
  their notes, payments, the coordinator's return comment, outcome and closure check,
  "I've read it" taps, its history of changes) and the signed scans' dates, type and size;
- every message queued for them (what it was, its state, when due and sent).

Not included, and why: the signed scans' files themselves (the paper the citizen
signed and kept; staff give a copy on request); the audit log (who among staff did
what, by id: the controller answers for it on request, see docs/privacy.md); the
anonymous counts, which are about nobody; other people's data, such as staff accounts
beyond the names of those who worked on the case.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from babel import Locale
from babel.dates import format_datetime
from fpdf import FPDF
from fpdf.enums import Align, MethodReturnValue, XPos, YPos
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import money, program
from shared.audit import service as audit
from shared.booking.models import Booking, Helpdesk, WaitlistEntry, WaitlistState
from shared.cases import interview as interview_form
from shared.cases import labels
from shared.cases.models import Case, Interview
from shared.citizens.errors import CitizenNotFound
from shared.citizens.models import Channel, Citizen
from shared.funds.labels import METHODS, PAYEES
from shared.funds.models import Fund, FundMovement, MovementKind
from shared.i18n import N_, Translator
from shared.intake import questionnaire
from shared.intake.errors import UnknownStep
from shared.intake.models import Intake, IntakeState
from shared.outbox.models import OutboxMessage
from shared.plans import catalog, document, history
from shared.plans import reviews as plan_reviews
from shared.plans.models import (
    Plan,
    PlanAcknowledgement,
    PlanChange,
    PlanCommitment,
    PlanObjective,
    PlanReview,
    PlanSupport,
    PlanTeamMember,
    SignedScan,
)
from shared.plans.pdf import FAMILY, FONT_FILES, FONTS
from shared.privacy import notice
from shared.staff.models import StaffUser

if TYPE_CHECKING:
    from shared.settings import Settings

FORMAT = "ripartire.my_data/1"
EMPTY = "—"

TITLE = N_("Your data in Ripartire")
INTRO = N_(
    "This is a copy of all the data the Ripartire program holds about you, made on "
    "{when} at your request (GDPR art. 15). Data controller: {controller}. Keep it "
    "safe: it contains personal and sensitive data. The file {json} holds the same data "
    "for other software."
)
NOT_HERE = N_(
    "Not in this copy: the scans of the plan you signed (you have the paper; ask your "
    "case worker for a copy), the staff's access log (ask the contacts in the privacy "
    "notice), and anonymous counts, which are about nobody."
)
NOTHING = N_("Nothing.")

INTAKE_STATES = {
    IntakeState.IN_PROGRESS.value: N_("Started, not finished"),
    IntakeState.SUMMARY.value: N_("Answered, waiting for your confirmation"),
    IntakeState.COMPLETED.value: N_("Confirmed by you"),
    IntakeState.EXPIRED.value: N_("Left unfinished: answers deleted"),
}
WAITLIST_STATES = {
    WaitlistState.WAITING.value: N_("Waiting for a place"),
    WaitlistState.OFFERED.value: N_("Place offered"),
    WaitlistState.ACCEPTED.value: N_("Offer accepted"),
    WaitlistState.EXPIRED.value: N_("Offer expired"),
    WaitlistState.DECLINED.value: N_("Offer declined"),
    WaitlistState.LEFT.value: N_("Left the waiting list"),
}
CHANNELS = {
    Channel.TELEGRAM.value: N_("Telegram (bot)"),
    Channel.PHONE.value: N_("Phone"),
    Channel.WALK_IN.value: N_("Walk-in"),
}
CANCEL_REASONS = {
    "moved": N_("moved to another time"),
    "erasure": N_("cancelled with your data"),
}
# The same words as the plan page's (dashboard.routes.plans): the same msgids.
OUTCOMES = {
    "employed": N_("Employed"),
    "internship_started": N_("Internship started"),
    "self_employment_restarted": N_("Self-employment restarted"),
    "referred": N_("Referred to another service"),
    "dropped_out": N_("Dropped out"),
    "other": N_("Other"),
}
TRENDS = {"better": N_("Better"), "same": N_("Same"), "worse": N_("Worse")}
BASELINES = (
    ("income", N_("Income")),
    ("debts", N_("Debts")),
    ("urgent_expenses", N_("Urgent expenses")),
)


@dataclass(frozen=True, slots=True)
class Part:
    """A titled part of the readable copy: rows of (label, value), texts, and sub-parts."""

    title: str
    rows: tuple[tuple[str, str], ...] = ()
    texts: tuple[str, ...] = ()
    parts: tuple[Part, ...] = ()


@dataclass(frozen=True, slots=True)
class MyData:
    citizen_id: int
    language: str
    generated_at: datetime
    # Plain JSON values (see the module docstring).
    record: dict[str, Any]
    # The same, for reading, in `language`.
    title: str
    intro: tuple[str, ...]
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class Files:
    """The two documents the citizen receives."""

    pdf_name: str
    pdf: bytes
    json_name: str
    json: bytes


class _Reader:
    """Formats for one citizen's copy: their language, the program's time zone."""

    def __init__(self, t: Translator, settings: Settings) -> None:
        self.t = t
        self.tz = settings.tz

    def when(self, value: datetime | None) -> str:
        if value is None:
            return EMPTY
        local = value.astimezone(self.tz)
        return str(format_datetime(local, "d MMMM y, HH:mm", locale=self.t.language))

    def day(self, value: date | None) -> str:
        return document.day(value, self.t) or EMPTY

    def iso(self, value: datetime | date | None) -> str | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(self.tz).isoformat()
        return value.isoformat()

    def yes(self, value: bool | None) -> str:
        if value is None:
            return EMPTY
        return self.t("Yes") if value else self.t("No")

    def label(self, msgids: Mapping[str, str], key: str | None) -> str:
        if key is None:
            return EMPTY
        msgid = msgids.get(key)
        return self.t(msgid) if msgid else key

    def by(self, actor: str | None, citizen_id: int) -> str:
        """Who did it, as the citizen reads it: themselves or the staff (no usernames)."""
        if actor is None:
            return EMPTY
        if actor == f"citizen:{citizen_id}":
            return self.t("You")
        return self.t("The program's staff")


def _language_name(code: str, t: Translator) -> str:
    """ "italiano", "English": the language's own name in the reader's language."""
    try:
        return str(Locale.parse(code).get_display_name(t.language) or code)
    except (ValueError, TypeError):
        return code


def _rows(*pairs: tuple[str, str | None]) -> tuple[tuple[str, str], ...]:
    """The pairs with a value ("" and None left out)."""
    return tuple((label, value) for label, value in pairs if value)


# --- collecting ----------------------------------------------------------------------------


async def collect(
    *, session: AsyncSession, settings: Settings, citizen_id: int, now: datetime
) -> MyData:
    """Everything the program holds about the citizen, in their language (read only)."""
    citizen = await session.get(Citizen, citizen_id)
    if citizen is None:
        raise CitizenNotFound(citizen_id)
    t = Translator(citizen.language)
    r = _Reader(t, settings)

    intake = await session.scalar(select(Intake).where(Intake.citizen_id == citizen_id))
    bookings = (
        await session.execute(
            select(Booking, Helpdesk)
            .join(Helpdesk, Helpdesk.id == Booking.helpdesk_id)
            .where(Booking.citizen_id == citizen_id)
            .order_by(Booking.starts_at, Booking.id)
        )
    ).all()
    waits = (
        await session.execute(
            select(WaitlistEntry, Helpdesk.name)
            .outerjoin(Helpdesk, Helpdesk.id == WaitlistEntry.helpdesk_id)
            .where(WaitlistEntry.citizen_id == citizen_id)
            .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        )
    ).all()
    cases = (
        await session.scalars(
            select(Case).where(Case.citizen_id == citizen_id).order_by(Case.opened_at, Case.id)
        )
    ).all()
    case_ids = [case.id for case in cases]
    interviews = {
        row.case_id: row
        for row in (
            await session.scalars(select(Interview).where(Interview.case_id.in_(case_ids)))
        ).all()
    }
    plans = {
        row.case_id: row
        for row in (await session.scalars(select(Plan).where(Plan.case_id.in_(case_ids)))).all()
    }
    plan_rows = await _plan_rows(session, [plan.id for plan in plans.values()])
    messages = (
        await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.citizen_id == citizen_id)
            .order_by(OutboxMessage.due_at, OutboxMessage.id)
        )
    ).all()
    staff_names = await _staff_names(session, cases, interviews.values(), plans.values(), plan_rows)
    fund_names = await _fund_names(session, plan_rows)

    record: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": r.iso(now),
        "language": t.language,
        "controller": settings.privacy_controller,
    }
    parts: list[Part] = []
    for key, (fragment, part) in (
        ("person", _person(citizen, r)),
        ("consent", _consent(citizen, r)),
        ("questionnaire", _questionnaire(intake, r)),
        ("bookings", _bookings(bookings, citizen_id, r)),
        ("waiting_list", _waiting_list(waits, r)),
        (
            "cases",
            _cases(cases, interviews, plans, plan_rows, staff_names, fund_names, r),
        ),
        ("messages", _messages(messages, r)),
    ):
        record[key] = fragment
        parts.append(part)
    json_name = _json_name(now, settings)
    intro = (
        t(
            INTRO,
            when=r.when(now),
            controller=settings.privacy_controller,
            json=json_name,
        ),
        t(NOT_HERE),
    )
    return MyData(
        citizen_id=citizen_id,
        language=t.language,
        generated_at=now,
        record=record,
        title=t(TITLE),
        intro=intro,
        parts=tuple(parts),
    )


def _person(citizen: Citizen, r: _Reader) -> tuple[dict[str, Any], Part]:
    t = r.t
    phone = questionnaire.labels("phone", citizen.phone, t) if citizen.phone else None
    record = {
        "name": citizen.name,
        "phone": citizen.phone,
        "email": citizen.email,
        "fiscal_code": citizen.fiscal_code,
        "language": citizen.language,
        "channel": citizen.channel,
        "telegram_user_id": citizen.telegram_user_id,
        "registered_at": r.iso(citizen.created_at),
        "urgent": citizen.urgent,
        "unreachable_on_telegram": citizen.unreachable,
    }
    part = Part(
        t("About you"),
        _rows(
            (t("Name"), citizen.name or EMPTY),
            (t("Phone"), phone or EMPTY),
            (t("E-mail"), citizen.email or EMPTY),
            (t("Fiscal code"), citizen.fiscal_code or EMPTY),
            (t("Language"), _language_name(citizen.language, t)),
            (t("How you came to us"), r.label(CHANNELS, citizen.channel)),
            (t("Telegram user id"), str(citizen.telegram_user_id or "") or EMPTY),
            (t("Registered on"), r.when(citizen.created_at)),
            (t("Marked urgent"), r.yes(citizen.urgent)),
            (t("Messages stopped (you had blocked the bot)"), r.yes(citizen.unreachable)),
        ),
    )
    return record, part


def _consent(citizen: Citizen, r: _Reader) -> tuple[dict[str, Any], Part]:
    t = r.t
    record = {
        "notice_version": citizen.consent_version,
        "accepted_at": r.iso(citizen.consented_at),
        "current_notice_version": notice.VERSION,
    }
    part = Part(
        t("Privacy notice"),
        _rows(
            (t("Version you accepted"), citizen.consent_version or EMPTY),
            (t("Accepted on"), r.when(citizen.consented_at)),
            (t("Current version"), notice.VERSION),
        ),
    )
    return record, part


def _questionnaire(intake: Intake | None, r: _Reader) -> tuple[dict[str, Any] | None, Part]:
    t = r.t
    title = t("Questionnaire")
    if intake is None:
        return None, Part(title, texts=(t(NOTHING),))
    answers = dict(intake.answers or {})
    listed = []
    for key, value in answers.items():
        try:
            step = questionnaire.step(key)
        except UnknownStep:  # a step since removed from the questionnaire
            listed.append({"key": key, "question": key, "answer": value, "text": str(value)})
            continue
        listed.append(
            {
                "key": key,
                "question": t(step.title),
                "answer": value,
                "text": questionnaire.labels(key, value, t),
            }
        )
    record = {
        "state": intake.state,
        "started_at": r.iso(intake.started_at),
        "updated_at": r.iso(intake.updated_at),
        "completed_at": r.iso(intake.completed_at),
        "eligible": intake.eligible,
        "urgent": intake.urgent,
        "answers": listed,
    }
    outcome = EMPTY if intake.eligible is None else r.yes(intake.eligible)
    part = Part(
        title,
        _rows(
            (t("State"), r.label(INTAKE_STATES, intake.state)),
            (t("Started on"), r.when(intake.started_at)),
            (t("Confirmed on"), r.when(intake.completed_at) if intake.completed_at else None),
            (t("Meets the program's requirements"), outcome),
        ),
        parts=(
            Part(
                t("Your answers"),
                tuple(questionnaire.summary(answers, t)),
                texts=() if answers else (t(NOTHING),),
            ),
        ),
    )
    return record, part


def _bookings(
    rows: Sequence[Any], citizen_id: int, r: _Reader
) -> tuple[list[dict[str, Any]], Part]:
    t = r.t
    codes = {booking.id: booking.code for booking, _desk in rows}
    listed, parts = [], []
    for booking, desk in rows:
        state = labels.booking_state(booking.state, booking.moderation)
        reason = booking.cancel_reason
        listed.append(
            {
                "code": booking.code,
                "state": booking.state,
                "state_text": t(state),
                "request": booking.moderation,
                "starts_at": r.iso(booking.starts_at),
                "ends_at": r.iso(booking.ends_at),
                "helpdesk": desk.name,
                "address": desk.address,
                "booked_at": r.iso(booking.created_at),
                "booked_by": r.by(booking.created_by, citizen_id),
                "closed_at": r.iso(booking.closed_at),
                "cancel_reason": reason,
                "moved_from_code": codes.get(booking.moved_from_id or 0),
            }
        )
        reason_text = r.label(CANCEL_REASONS, reason) if reason else None
        parts.append(
            Part(
                t("Appointment {code}", code=booking.code),
                _rows(
                    (t("When"), r.when(booking.starts_at)),
                    (t("Helpdesk"), f"{desk.name}, {desk.address}"),
                    (t("State"), t(state)),
                    (t("Booked on"), r.when(booking.created_at)),
                    (t("Booked by"), r.by(booking.created_by, citizen_id)),
                    (t("Closed on"), r.when(booking.closed_at) if booking.closed_at else None),
                    (t("Reason"), reason_text),
                    (t("Replaces"), codes.get(booking.moved_from_id or 0)),
                ),
            )
        )
    return listed, Part(t("Appointments"), texts=() if parts else (t(NOTHING),), parts=tuple(parts))


def _waiting_list(rows: Sequence[Any], r: _Reader) -> tuple[list[dict[str, Any]], Part]:
    t = r.t
    listed, table = [], []
    for entry, desk_name in rows:
        listed.append(
            {
                "state": entry.state,
                "state_text": r.label(WAITLIST_STATES, entry.state),
                "helpdesk": desk_name,
                "urgent": entry.urgent,
                "since": r.iso(entry.created_at),
                "offer_expires_at": r.iso(entry.offer_expires_at),
            }
        )
        where = desk_name or t("Any helpdesk")
        table.append(
            (r.when(entry.created_at), f"{where}: {r.label(WAITLIST_STATES, entry.state)}")
        )
    return listed, Part(t("Waiting list"), tuple(table), texts=() if table else (t(NOTHING),))


def _cases(
    cases: Sequence[Case],
    interviews: Mapping[int, Interview],
    plans: Mapping[int, Plan],
    plan_rows: _PlanRows,
    staff_names: Mapping[int, str],
    fund_names: Mapping[int, str],
    r: _Reader,
) -> tuple[list[dict[str, Any]], Part]:
    t = r.t
    listed, parts = [], []
    for case in cases:
        worker = staff_names.get(case.assigned_to_id) if case.assigned_to_id else None
        decision = (
            {
                "eligible": case.eligibility_override,
                "reason": case.override_reason,
                "at": r.iso(case.override_at),
            }
            if case.eligibility_override is not None
            else None
        )
        found = interviews.get(case.id)
        plan = plans.get(case.id)
        interview_record, interview_part = _interview(found, staff_names, r)
        plan_record, plan_part = (
            _plan(plan, plan_rows, staff_names, fund_names, r) if plan else (None, None)
        )
        listed.append(
            {
                "reference": case.id,
                "state": case.state,
                "state_text": r.label(labels.CASE_STATES, case.state),
                "opened_at": r.iso(case.opened_at),
                "closed_at": r.iso(case.closed_at),
                "close_reason": case.close_reason,
                "urgent": case.urgent,
                "questionnaire_eligible": case.eligible,
                "coordinator_decision": decision,
                "case_worker": worker,
                "missed_appointments": case.no_shows,
                "previous_case": case.previous_case_id,
                "interview": interview_record,
                "plan": plan_record,
            }
        )
        decided = None
        if case.eligibility_override is not None:
            decided = (
                t("You may take part") if case.eligibility_override else t("You may not take part")
            )
        sub = [interview_part] if interview_part else []
        if plan_part is not None:
            sub.append(plan_part)
        parts.append(
            Part(
                t("Case {n}", n=case.id),
                _rows(
                    (t("State"), r.label(labels.CASE_STATES, case.state)),
                    (t("Opened on"), r.when(case.opened_at)),
                    (t("Closed on"), r.when(case.closed_at) if case.closed_at else None),
                    (t("Reason for closing"), case.close_reason),
                    (t("Case worker"), worker),
                    (t("Urgent"), r.yes(case.urgent)),
                    (t("A coordinator's decision"), decided),
                    (t("Decided on"), r.when(case.override_at) if decided else None),
                    (t("Reason for the decision"), case.override_reason),
                    (t("Missed appointments"), str(case.no_shows) if case.no_shows else None),
                ),
                parts=tuple(sub),
            )
        )
    return listed, Part(t("Your path"), texts=() if parts else (t(NOTHING),), parts=tuple(parts))


def _interview(
    found: Interview | None, staff_names: Mapping[int, str], r: _Reader
) -> tuple[dict[str, Any] | None, Part | None]:
    if found is None:
        return None, None
    t = r.t
    form = interview_form.load(found.answers or {})
    sections = interview_form.filled(form, t)
    interviewer = staff_names.get(found.interviewer_id) if found.interviewer_id else None
    record = {
        "started_at": r.iso(found.started_at),
        "completed_at": r.iso(found.completed_at),
        "interviewer": interviewer,
        "outcome": found.outcome,
        "outcome_text": r.label(labels.OUTCOMES, found.outcome) if found.outcome else None,
        "outcome_reason": found.outcome_reason,
        "referred_to": found.referred_to,
        "answers": found.answers,
        "sections": [
            {"title": title, "answers": [{"label": label, "text": text} for label, text in rows]}
            for title, rows in sections
        ],
    }
    part = Part(
        t("Interview"),
        _rows(
            (t("Interviewer"), interviewer),
            (t("Started on"), r.when(found.started_at)),
            (t("Completed on"), r.when(found.completed_at) if found.completed_at else None),
            (
                t("Outcome"),
                r.label(labels.OUTCOMES, found.outcome) if found.outcome else t("Not yet"),
            ),
            (t("Reason"), found.outcome_reason),
            (t("Referred to"), found.referred_to),
        ),
        parts=tuple(Part(title, tuple(rows)) for title, rows in sections),
    )
    return record, part


@dataclass(frozen=True, slots=True)
class _PlanRows:
    """The rows of the citizen's plans, by plan id, each list in its order."""

    objectives: Mapping[int, list[PlanObjective]]
    commitments: Mapping[int, list[PlanCommitment]]
    supports: Mapping[int, list[PlanSupport]]
    team: Mapping[int, list[PlanTeamMember]]
    reviews: Mapping[int, list[PlanReview]]
    payments: Mapping[int, list[FundMovement]]
    acknowledgements: Mapping[int, list[PlanAcknowledgement]]
    scans: Mapping[int, list[tuple[int, str, int, datetime]]]
    changes: Mapping[int, list[PlanChange]]


async def _plan_rows(session: AsyncSession, plan_ids: list[int]) -> _PlanRows:
    async def by_plan(model: Any, *order: Any) -> dict[int, list[Any]]:
        grouped: dict[int, list[Any]] = {plan_id: [] for plan_id in plan_ids}
        if plan_ids:
            query = select(model).where(model.plan_id.in_(plan_ids)).order_by(*order)
            for row in (await session.scalars(query)).all():
                grouped[row.plan_id].append(row)
        return grouped

    def ordered(model: Any) -> tuple[Any, ...]:
        return (model.position, model.id)

    payments: dict[int, list[FundMovement]] = {plan_id: [] for plan_id in plan_ids}
    scans: dict[int, list[tuple[int, str, int, datetime]]] = {plan_id: [] for plan_id in plan_ids}
    if plan_ids:
        paid = await session.scalars(
            select(FundMovement)
            .where(
                FundMovement.plan_id.in_(plan_ids),
                FundMovement.kind == MovementKind.PAYMENT.value,
            )
            .order_by(FundMovement.paid_on, FundMovement.id)
        )
        for movement in paid.all():
            assert movement.plan_id is not None
            payments[movement.plan_id].append(movement)
        # Not the content: a deferred column, never loaded here.
        scanned = await session.execute(
            select(
                SignedScan.plan_id,
                SignedScan.version,
                SignedScan.media_type,
                SignedScan.size_bytes,
                SignedScan.uploaded_at,
            )
            .where(SignedScan.plan_id.in_(plan_ids))
            .order_by(SignedScan.id)
        )
        for plan_id, version, media_type, size, uploaded_at in scanned.all():
            scans[plan_id].append((version, media_type, size, uploaded_at))
    return _PlanRows(
        objectives=await by_plan(PlanObjective, *ordered(PlanObjective)),
        commitments=await by_plan(PlanCommitment, *ordered(PlanCommitment)),
        supports=await by_plan(PlanSupport, *ordered(PlanSupport)),
        team=await by_plan(PlanTeamMember, *ordered(PlanTeamMember)),
        reviews=await by_plan(PlanReview, PlanReview.held_on, PlanReview.id),
        payments=payments,
        acknowledgements=await by_plan(
            PlanAcknowledgement, PlanAcknowledgement.acknowledged_at, PlanAcknowledgement.id
        ),
        scans=scans,
        changes=await by_plan(PlanChange, PlanChange.id),
    )


async def _staff_names(
    session: AsyncSession,
    cases: Sequence[Case],
    interviews: Iterable[Interview],
    plans: Iterable[Plan],
    rows: _PlanRows,
) -> dict[int, str]:
    """The display names of the staff who worked on the citizen's cases (nothing else)."""
    ids = {case.assigned_to_id for case in cases}
    ids |= {found.interviewer_id for found in interviews}
    ids |= {plan.owner_id for plan in plans}
    ids |= {s.responsible_id for listed in rows.supports.values() for s in listed}
    ids |= {m.staff_id for listed in rows.team.values() for m in listed}
    for listed in rows.changes.values():
        for change in listed:
            for snapshot in (change.before or {}, change.after or {}):
                for key in ("responsible_id", "staff_id"):
                    value = snapshot.get(key)
                    if isinstance(value, int):
                        ids.add(value)
    wanted = sorted(i for i in ids if i is not None)
    if not wanted:
        return {}
    found = await session.execute(
        select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(wanted))
    )
    return {staff_id: name for staff_id, name in found.all()}


async def _fund_names(session: AsyncSession, rows: _PlanRows) -> dict[int, str]:
    ids = {s.fund_id for listed in rows.supports.values() for s in listed}
    ids |= {m.fund_id for listed in rows.payments.values() for m in listed}
    wanted = sorted(i for i in ids if i is not None)
    if not wanted:
        return {}
    found = await session.execute(select(Fund.id, Fund.name).where(Fund.id.in_(wanted)))
    return {fund_id: name for fund_id, name in found.all()}


def _plan(
    plan: Plan,
    rows: _PlanRows,
    staff_names: Mapping[int, str],
    fund_names: Mapping[int, str],
    r: _Reader,
) -> tuple[dict[str, Any], Part]:
    t = r.t
    objectives = rows.objectives[plan.id]
    commitments = rows.commitments[plan.id]
    supports = rows.supports[plan.id]
    team = rows.team[plan.id]
    reviews = rows.reviews[plan.id]
    payments = rows.payments[plan.id]
    acknowledgements = rows.acknowledgements[plan.id]
    scans = rows.scans[plan.id]
    changes = rows.changes[plan.id]
    owner = staff_names.get(plan.owner_id) if plan.owner_id else None
    trends = {
        "income": plan.income_trend,
        "debts": plan.debts_trend,
        "urgent_expenses": plan.urgent_expenses_trend,
    }

    def member_name(member: PlanTeamMember) -> str:
        name = staff_names.get(member.staff_id, "") if member.staff_id else member.name or ""
        where = program.organisation_name(member.organisation) if member.organisation else ""
        return ", ".join(p for p in (name, where) if p) or EMPTY

    support_records, support_parts = _unzip(
        [_support(support, staff_names, fund_names, r) for support in supports]
    )
    review_records, review_parts = _unzip([_review(review, r) for review in reviews])
    change_views = [
        history.describe(change, t, staff_names=staff_names, fund_names=fund_names)
        for change in changes
    ]
    record = {
        "version": plan.version,
        "state": plan.state,
        "state_text": r.label(document.STATE_LABELS, plan.state),
        "case_worker": owner,
        "summary": plan.summary,
        "created_at": r.iso(plan.created_at),
        "submitted_at": r.iso(plan.submitted_at),
        "approved_at": r.iso(plan.approved_at),
        "return_comment": plan.return_comment,
        "signed_on": r.iso(plan.signed_on),
        "activated_at": r.iso(plan.activated_at),
        "next_review_on": r.iso(plan.next_review_on),
        "closed_at": r.iso(plan.closed_at),
        "outcome": plan.outcome,
        "outcome_text": r.label(OUTCOMES, plan.outcome) if plan.outcome else None,
        "outcome_notes": plan.outcome_notes,
        "closure_check": trends,
        "objectives": [
            {"objective": o.objective, "expected_result": o.expected_result} for o in objectives
        ],
        "commitments": [{"what": c.what, "due_on": r.iso(c.due_on)} for c in commitments],
        "supports": support_records,
        "team": [{"who": member_name(m), "role": m.role} for m in team],
        "reviews": review_records,
        "payments": [
            {
                "paid_on": r.iso(m.paid_on),
                "amount_cents": m.amount_cents,
                "paid_to": m.paid_to,
                "method": m.method,
                "fund": fund_names.get(m.fund_id),
                "note": m.note,
            }
            for m in payments
        ],
        "read_on_telegram": [
            {"version": a.version, "at": r.iso(a.acknowledged_at)} for a in acknowledgements
        ],
        "signed_scans": [
            {"version": v, "media_type": kind, "size_bytes": size, "uploaded_at": r.iso(at)}
            for v, kind, size, at in scans
        ],
        "changes": [
            {
                "at": r.iso(change.at),
                "what": change.what,
                "material": change.material,
                "before": change.before,
                "after": change.after,
                "text": [view.title, *view.lines],
            }
            for change, view in zip(changes, change_views, strict=True)
        ],
    }
    closure = tuple(
        (t(label), r.label(TRENDS, trends[key])) for key, label in BASELINES if trends[key]
    )
    sub = [
        Part(
            t(document.HEADINGS["objectives"]),
            tuple(
                (f"{n}. {o.objective}", o.expected_result or EMPTY)
                for n, o in enumerate(objectives, start=1)
            ),
        ),
        Part(
            t(document.HEADINGS["commitments"]),
            tuple(
                (c.what, t(document.HEADINGS["by"], date=r.day(c.due_on)) if c.due_on else EMPTY)
                for c in commitments
            ),
        ),
        Part(t(document.HEADINGS["supports"]), parts=tuple(support_parts)),
        Part(t(document.HEADINGS["team"]), tuple((m.role or EMPTY, member_name(m)) for m in team)),
        Part(t("Reviews"), parts=tuple(review_parts)),
        Part(
            t("Payments"),
            tuple(
                (
                    r.day(m.paid_on),
                    ", ".join(
                        p
                        for p in (
                            money.format_euros(m.amount_cents, t.language),
                            r.label(PAYEES, m.paid_to),
                            r.label(METHODS, m.method),
                            fund_names.get(m.fund_id, ""),
                            m.note,
                        )
                        if p
                    ),
                )
                for m in payments
            ),
        ),
        Part(
            t("Read on Telegram"),
            tuple(
                (t("Version {version}", version=a.version), r.when(a.acknowledged_at))
                for a in acknowledgements
            ),
        ),
        Part(
            t("Scans of the signed plan"),
            tuple(
                (t("Version {version}", version=v), f"{r.when(at)} ({kind}, {size} B)")
                for v, kind, size, at in scans
            ),
        ),
        Part(
            t("The plan's history"),
            tuple(
                (r.when(change.at), "\n".join([view.title, *view.lines]))
                for change, view in zip(changes, change_views, strict=True)
            ),
        ),
    ]
    part = Part(
        t(document.TITLE),
        _rows(
            (t("State"), r.label(document.STATE_LABELS, plan.state)),
            (t("Version"), str(plan.version)),
            (t("Case worker"), owner),
            (t(document.HEADINGS["summary"]), plan.summary),
            (t("Started on"), r.when(plan.created_at)),
            (t("Approved on"), r.when(plan.approved_at) if plan.approved_at else None),
            (t("Returned with this comment"), plan.return_comment),
            (t("Signed on"), r.day(plan.signed_on) if plan.signed_on else None),
            (t("Next review"), r.day(plan.next_review_on) if plan.next_review_on else None),
            (t("Closed on"), r.when(plan.closed_at) if plan.closed_at else None),
            (t("Outcome"), r.label(OUTCOMES, plan.outcome) if plan.outcome else None),
            (t("Notes on the outcome"), plan.outcome_notes),
            *closure,
        ),
        parts=tuple(p for p in sub if p.rows or p.parts),
    )
    return record, part


def _unzip(pairs: list[tuple[dict[str, Any], Part]]) -> tuple[list[dict[str, Any]], list[Part]]:
    return [record for record, _ in pairs], [part for _, part in pairs]


def _support(
    support: PlanSupport,
    staff_names: Mapping[int, str],
    fund_names: Mapping[int, str],
    r: _Reader,
) -> tuple[dict[str, Any], Part]:
    """One support of the plan: its fields and the catalog's details, with their labels."""
    t = r.t
    try:
        title = t(catalog.intervention(support.kind).label)
        details = catalog.filled_details(
            support.kind, catalog.load_details(support.kind, support.details or {}), t
        )
    except (KeyError, ValueError):  # a kind no longer in the catalog
        title, details = support.kind, []
    if support.responsible_id is not None:
        responsible = staff_names.get(support.responsible_id, EMPTY)
    else:
        responsible = program.organisation_name(support.organisation or "") or EMPTY
    cents = support.amount_cents
    amount = money.format_euros(cents, t.language) if cents else None
    fund = fund_names.get(support.fund_id) if support.fund_id is not None else None
    state = r.label(document.SUPPORT_STATE_LABELS, support.state)
    record = {
        "kind": support.kind,
        "title": title,
        "state": support.state,
        "state_text": state,
        "responsible": responsible,
        "starts_on": r.iso(support.starts_on),
        "ends_on": r.iso(support.ends_on),
        "amount_cents": cents,
        "fund": fund,
        "details": support.details,
        "details_text": [{"label": label, "text": text} for label, text in details],
    }
    period = " – ".join(r.day(d) for d in (support.starts_on, support.ends_on) if d)
    rows = _rows(
        (t("State"), state),
        (t("Responsible"), responsible),
        (t("Period"), period),
        (t("Amount"), amount),
        (t("Fund"), fund),
        *details,
    )
    return record, Part(title, rows)


def _review(review: PlanReview, r: _Reader) -> tuple[dict[str, Any], Part]:
    """One review meeting: how far each objective and commitment had come, and its notes."""
    t = r.t
    seen = plan_reviews.shown(review)
    record = {
        "held_on": r.iso(review.held_on),
        "next_review_on": r.iso(review.next_review_on),
        "notes": review.notes,
        "progress": [
            {"kind": i.kind, "text": i.text, "status": i.status, "note": i.note} for i in seen.items
        ],
    }
    progress = []
    for item in seen.items:
        status = t(item.status_label) if item.status_label else item.status
        progress.append((item.text, "; ".join(p for p in (status, item.note) if p)))
    rows = _rows(
        *progress,
        (t("Notes"), review.notes),
        (t("Next review"), r.day(review.next_review_on)),
    )
    return record, Part(t("Review of {day}", day=r.day(review.held_on)), rows)


def _messages(rows: Sequence[OutboxMessage], r: _Reader) -> tuple[list[dict[str, Any]], Part]:
    t = r.t
    listed, table = [], []
    for message in rows:
        what = r.label(labels.MESSAGES, message.kind)
        state = r.label(labels.MESSAGE_STATES, message.state)
        listed.append(
            {
                "kind": message.kind,
                "text": what,
                "state": message.state,
                "state_text": state,
                "due_at": r.iso(message.due_at),
                "sent_at": r.iso(message.sent_at),
            }
        )
        at = message.sent_at or message.due_at
        table.append((r.when(at), f"{what} ({state})"))
    return listed, Part(
        t("Messages we sent you"), tuple(table), texts=() if table else (t(NOTHING),)
    )


# --- rendering -----------------------------------------------------------------------------


def _json_name(now: datetime, settings: Settings) -> str:
    return f"ripartire-data-{now.astimezone(settings.tz).date().isoformat()}.json"


def as_json(data: MyData) -> bytes:
    """The copy as a JSON document (UTF-8, indented): stored values and their words."""
    return json.dumps(data.record, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8")


# Millimetres and points, as the plan's PDF.
_MARGIN = 18.0
_LINE = 5.0
_BODY = 10.0
_LABEL_WIDTH = 58.0
_GREY = 90
# fpdf2 replaces "{nb}" in every text it prints (see shared.plans.pdf): a private-use alias.
_TOTAL_PAGES = "\ue000\ue000\ue000"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class _DataPDF(FPDF):
    def __init__(self, data: MyData) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.data = data
        for style, name in FONT_FILES:
            self.add_font(FAMILY, style, fname=FONTS / name)
        self.alias_nb_pages(_TOTAL_PAGES, align=Align.L)
        self.set_margins(_MARGIN, 14, _MARGIN)
        self.set_auto_page_break(auto=True, margin=18)
        self.c_margin = 0
        self.set_draw_color(170)
        self.set_line_width(0.2)

    def header(self) -> None:
        self.set_font(FAMILY, "B", 11)
        self.cell(self.epw / 2, 5, program.PROGRAM, new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.set_font(FAMILY, "", 9)
        self.cell(self.epw / 2, 5, program.MUNICIPALITY, align=Align.R)
        self.ln(6)
        self.line(self.l_margin, self.y, self.w - self.r_margin, self.y)
        self.ln(5)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(FAMILY, "", 7.5)
        self.set_text_color(_GREY)
        self.cell(self.epw / 2, 4, self.data.title, new_x=XPos.RIGHT)
        self.cell(self.epw / 2, 4, f"{self.page_no()}/{_TOTAL_PAGES}", align=Align.R)
        self.set_text_color(0)

    def paragraph(self, text: str, *, style: str = "", size: float = _BODY) -> None:
        self.set_font(FAMILY, style, size)
        self.multi_cell(0, _LINE, _clean(text), align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(self, text: str, depth: int) -> None:
        self.ln(3 if depth == 0 else 1.5)
        if self.will_page_break(4 * _LINE):
            self.add_page()
        self.set_font(FAMILY, "B", (13, 11.5, 10.5, 10)[min(depth, 3)])
        self.multi_cell(0, 6, _clean(text), align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if depth == 0:
            self.line(self.l_margin, self.y, self.w - self.r_margin, self.y)
        self.ln(1.5)

    def _lines(self, text: str, width: float) -> int:
        if not text:
            return 1
        if "\n" not in text and self.get_string_width(text) <= width:
            return 1
        broken = self.multi_cell(width, _LINE, text, dry_run=True, output=MethodReturnValue.LINES)
        assert isinstance(broken, list)
        return max(len(broken), 1)

    def row(self, label: str, value: str) -> None:
        """Label and value side by side, kept on one page when they fit on one."""
        label, value = _clean(label), _clean(value)
        value_width = self.epw - _LABEL_WIDTH
        self.set_font(FAMILY, "B", _BODY)
        label_lines = self._lines(label, _LABEL_WIDTH - 3)
        self.set_font(FAMILY, "", _BODY)
        height = _LINE * max(label_lines, self._lines(value, value_width))
        if height < self.page_break_trigger - self.t_margin - 20 and self.will_page_break(height):
            self.add_page()
        top, page = self.y, self.page
        self.set_font(FAMILY, "B", _BODY)
        self.set_text_color(_GREY)
        self.multi_cell(
            _LABEL_WIDTH - 3, _LINE, label, align=Align.L, new_x=XPos.RIGHT, new_y=YPos.TOP
        )
        self.set_text_color(0)
        self.set_font(FAMILY, "", _BODY)
        self.set_xy(self.l_margin + _LABEL_WIDTH, top)
        self.multi_cell(
            value_width, _LINE, value, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        if self.page == page:
            self.set_y(max(self.y, top + height))
        self.ln(0.8)

    def part(self, part: Part, depth: int) -> None:
        self.heading(part.title, depth)
        for label, value in part.rows:
            self.row(label, value)
        for text in part.texts:
            self.paragraph(text)
        for sub in part.parts:
            self.part(sub, depth + 1)


def _clean(text: str) -> str:
    """Text fpdf2 prints as written: no control characters, no page-count alias."""
    # The font has no arrow (the plan history's "before → after").
    return _CONTROL.sub(" ", text).replace("{nb}", "{ nb}").replace("→", "»")


def as_pdf(data: MyData) -> bytes:
    """The copy as an A4 PDF to read, in the citizen's language (same data, same bytes)."""
    pdf = _DataPDF(data)
    pdf.set_title(data.title)
    pdf.set_author(program.MUNICIPALITY)
    pdf.set_creator(program.PROGRAM)
    pdf.set_lang(data.language)
    pdf.set_creation_date(data.generated_at.astimezone(UTC))
    pdf.add_page()
    pdf.paragraph(data.title, style="B", size=16)
    pdf.ln(2)
    for text in data.intro:
        pdf.paragraph(text)
        pdf.ln(1.5)
    for part in data.parts:
        pdf.part(part, 0)
    return bytes(pdf.output())


# --- the service -----------------------------------------------------------------------------


async def export(
    *, session: AsyncSession, settings: Settings, citizen_id: int, now: datetime
) -> Files:
    """The citizen's copy of their data as a PDF and a JSON file; the access is audited."""
    data = await collect(session=session, settings=settings, citizen_id=citizen_id, now=now)
    files = Files(
        pdf_name=_json_name(now, settings).removesuffix(".json") + ".pdf",
        pdf=as_pdf(data),
        json_name=_json_name(now, settings),
        json=as_json(data),
    )
    await audit.record(
        session=session,
        actor=f"citizen:{citizen_id}",
        action="citizen.data_export",
        object_type="citizen",
        object_id=str(citizen_id),
    )
    return files
