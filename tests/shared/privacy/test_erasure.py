"""Erasure (SPEC J8, issue 14 point 3): a citizen with everything the program can hold about
them is erased, then every column of every table (encrypted ones decrypted), and the log,
are searched for what identified them; the figures count the same; the place is freed.
Also: a second erasure, the anonymisation of one case (retention's), a held place on the
waiting list, what an erased citizen can no longer get, both databases."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import pytest
from codicefiscale import codicefiscale
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import crypto, logs
from shared.audit.models import AuditEvent
from shared.booking import service as booking
from shared.booking.errors import NotAllowedToBook
from shared.booking.models import Booking, BookingState, Slot, WaitlistEntry, WaitlistState
from shared.booking.places import CODE_ALPHABET
from shared.booking.service import CancelledBy
from shared.cases import service as cases
from shared.cases.errors import CaseNotFound, NotAllowed
from shared.cases.models import Case, CaseNamePrefix, Interview
from shared.citizens import service as citizens
from shared.citizens.errors import CitizenNotFound
from shared.citizens.models import Citizen
from shared.figures.period import Period
from shared.figures.service import Figures, figures
from shared.funds import service as funds
from shared.funds.models import Payee, PaymentMethod
from shared.intake.models import Intake, IntakeState, ScreeningTally
from shared.outbox import service as outbox
from shared.outbox.models import OutboxMessage
from shared.plans import reviews, scans
from shared.plans import service as plans
from shared.plans.catalog import Kind
from shared.plans.form import (
    CommitmentInput,
    ObjectiveInput,
    PlanInput,
    Responsible,
    SupportInput,
    TeamInput,
)
from shared.plans.models import PlanSupport, PlanTeamMember, SignedScan, SupportState
from shared.privacy import erasure
from shared.schema import metadata
from shared.settings import Settings
from shared.staff.models import Role
from tests.conftest import DATA_KEY
from tests.factories import make_helpdesk, rome
from tests.shared.cases.builders import (
    NOW,
    TUESDAY_9,
    WEDNESDAY_9,
    book,
    make_candidate,
    make_staff,
    member,
)
from tests.shared.figures import dataset
from tests.shared.plans.builders import as_input, details, job_search, make_fund
from tests.shared.privacy import builders as privacy_builders

NAME = "Ermenegilda Zappacosta"
PHONE = "+393471234567"
EMAIL = "ermenegilda.zappacosta@example.org"
FISCAL_CODE = codicefiscale.encode(
    lastname="Zappacosta", firstname="Ermenegilda", gender="F",
    birthdate="12/05/1979", birthplace="Milano",
)  # fmt: skip
TELEGRAM_ID = 7_771_234_567
# What staff typed about her, each with a word of its own, to tell where a leak is.
TYPED = {
    "override": "Residente da ottobre, conferma Quercialuna",
    "staff_cancel": "Ha telefonato Brughiera per spostare",
    "outcome_reason": "Preferisce il percorso Fontanile",
    "referral": "Centro per l'impiego, sportello Cascinazza",
    "interview_notes": "Vive con la madre, nota Roggiabella",
    "wellbeing": "Ansia per lo sfratto, nota Tramontina",
    "last_job": "Commessa da Pescarenico",
    "summary": "Situazione Lavandaia: affitto arretrato",
    "summary_after": "Situazione Lavandaia aggiornata: Pioppeto",
    "objective": "Trovare lavoro come Ciclamino",
    "result": "Contratto entro Biancospino",
    "commitment": "Portare il curriculum a Ghiandaia",
    "payee": "Immobiliare Martinpescatore",
    "purpose": "Arretrati di Santolina",
    "job_notes": "Colloquio fissato da Rondinella",
    "outsider": "Dottoressa Gelsomina Cardellino",
    "return_comment": "Manca il dettaglio Pettirosso",
    "review_notes": "Incontro con Lucciola",
    "review_item": "Curriculum consegnato a Falena",
    "payment_note": "Bonifico al locatore Capinera",
}
SCAN_MARK = "FirmaScansionataZappacosta"
# The interview's notes are encrypted at rest: only a decrypting search finds them.
ENCRYPTED_ONLY = TYPED["interview_notes"]

MEETING = rome(2027, 1, 8, 10)
FOLLOW_UP = rome(2027, 1, 12, 9)
ERASE_AT = MEETING + timedelta(hours=2)
PERIOD = Period(date(2026, 12, 1), date(2027, 1, 31))


# --- reading everything stored -------------------------------------------------------------


def _texts_of(value: Any, cipher: crypto.DataCipher | None) -> list[str]:
    """A stored value as the texts it holds; with `cipher`, encrypted values decrypted too."""
    if value is None:
        return []
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, bytes):
        return [value.decode("latin-1")]
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    shown = str(value)
    found = [shown]
    if cipher is not None and crypto.MARKER in shown:
        token = json.loads(shown) if shown.startswith('"') else shown
        found.append(cipher.decrypt(token))
    return found


async def _everything_stored(session: AsyncSession, *, decrypt: bool = True) -> dict[str, str]:
    """Every column of every table of the schema (a table added later too), read with raw
    SQL: "table.column" → all its values as text, lower case."""
    cipher = crypto.DataCipher([DATA_KEY]) if decrypt else None
    stored: dict[str, list[str]] = {}
    for table in metadata.sorted_tables:
        rows = (await session.execute(text(f'SELECT * FROM "{table.name}"'))).mappings().all()
        for row in rows:
            for column, value in row.items():
                stored.setdefault(f"{table.name}.{column}", []).extend(_texts_of(value, cipher))
    return {where: "\n".join(values).lower() for where, values in stored.items()}


def _where(stored: dict[str, str], secrets: Iterable[str]) -> dict[str, list[str]]:
    """Each secret found, with the columns it is in."""
    found = {}
    for secret in secrets:
        places = sorted(where for where, values in stored.items() if secret.lower() in values)
        if places:
            found[secret] = places
    return found


async def _figures(
    session: AsyncSession, settings: Settings, helpdesks: Iterable[int]
) -> list[Figures]:
    """The figures of the period for the whole program and for each helpdesk."""
    return [
        await figures(
            session=session, settings=settings, period=PERIOD, helpdesk_id=h, now=ERASE_AT
        )
        for h in (None, *helpdesks)
    ]


# --- a citizen with everything -----------------------------------------------------------


@dataclasses.dataclass
class Subject:
    citizen_id: int
    case_ids: tuple[int, int]
    helpdesk_id: int
    codes: list[str]
    follow_up: Booking
    bystander_id: int


async def _everything(session: AsyncSession, settings: Settings) -> Subject:
    """Ermenegilda: a questionnaire, two cases (the first referred elsewhere, the second
    admitted with an active plan: objectives, commitments, supports with money, an outside
    team member, a return, a change after approval, a signed scan, a review, a payment),
    bookings cancelled, attended and one still to come, messages, a past waiting-list
    entry. And Gianfranco, whose data must stay."""
    worker = member(await make_staff(session, "giulia"))
    boss = member(await make_staff(session, "carla", Role.COORDINATORE))
    helpdesk = await make_helpdesk(session, name="Sportello Zona Nord", places=20)
    citizen, first = await make_candidate(
        session, name=NAME, phone=PHONE, fiscal_code=FISCAL_CODE, telegram_id=TELEGRAM_ID,
        answers={"email": EMAIL},
    )  # fmt: skip
    citizen.email = EMAIL
    bystander, _case = await make_candidate(
        session, name="Gianfranco Pellizzari", phone="+393389876543", telegram_id=4_444_555
    )
    await book(session, settings, bystander, helpdesk, WEDNESDAY_9 + timedelta(hours=1))

    # The first case: a booking staff cancel with a note, a coordinator's decision, an
    # appointment attended, a referral elsewhere.
    cancelled = await book(session, settings, citizen, helpdesk, WEDNESDAY_9)
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=cancelled.id, by=CancelledBy.STAFF,
        actor=worker.actor, reason=TYPED["staff_cancel"], now=NOW,
    )  # fmt: skip
    await cases.override_eligibility(
        session=session, settings=settings, case_id=first.id, eligible=True,
        reason=TYPED["override"], staff=boss, now=NOW,
    )  # fmt: skip
    attended = await book(session, settings, citizen, helpdesk, TUESDAY_9)
    await booking.mark_attended(
        session=session, booking_id=attended.id, actor=worker.actor, now=TUESDAY_9
    )
    await cases.record_outcome(
        session=session, case_id=first.id, outcome="referred", reason=TYPED["outcome_reason"],
        referred_to=TYPED["referral"], staff=worker, now=TUESDAY_9 + timedelta(minutes=30),
    )  # fmt: skip

    # The second case: interviewed, admitted, its plan active.
    later = TUESDAY_9 + timedelta(hours=1)
    second = await cases.on_intake_confirmed(
        session=session, citizen_id=citizen.id, eligible=True, urgent=False, now=later
    )
    came = await book(session, settings, citizen, helpdesk, WEDNESDAY_9, now=later)
    await booking.mark_attended(
        session=session, booking_id=came.id, actor=worker.actor, now=WEDNESDAY_9
    )
    interviewed = WEDNESDAY_9 + timedelta(minutes=30)
    await cases.save_interview(
        session=session, case_id=second.id, staff=worker, now=interviewed,
        fields={"notes.notes": [TYPED["interview_notes"]], "wellbeing.notes": [TYPED["wellbeing"]],
                "work.last_job": [TYPED["last_job"]]},
    )  # fmt: skip
    await cases.record_outcome(
        session=session, case_id=second.id, outcome="admitted", staff=worker, now=interviewed
    )
    fund = await make_fund(session, cents=5_000_00, name="Fondo Zona Nord")
    emergency = SupportInput(
        id=None, kind=Kind.EMERGENCY_SUPPORT,
        details=details(
            Kind.EMERGENCY_SUPPORT, form="monthly", monthly_amount="300", months="3",
            purpose=["rent"], purpose_notes=TYPED["purpose"], paid_to="landlord",
            payee=TYPED["payee"],
        ),
        responsible=Responsible(organisation="farsi_prossimo"), starts_on=date(2027, 1, 4),
        ends_on=date(2027, 3, 31), state=SupportState.PROPOSED, fund_id=fund.id,
    )  # fmt: skip
    searching = dataclasses.replace(
        job_search(),
        details=details(Kind.JOB_SEARCH, activities=["cv"], notes=TYPED["job_notes"]),
    )
    data = PlanInput(
        summary=TYPED["summary"], next_review_on=None,
        objectives=(ObjectiveInput(None, TYPED["objective"], TYPED["result"]),),
        commitments=(CommitmentInput(None, TYPED["commitment"], date(2027, 1, 20)),),
        supports=(emergency, searching),
        team=(TeamInput(None, Responsible(organisation="cardinal_martini"), TYPED["outsider"],
                        "Psicologa"),
              TeamInput(None, Responsible(staff_id=worker.user_id), "", "Case manager")),
    )  # fmt: skip
    planned = interviewed + timedelta(hours=1)
    await plans.start_plan(session=session, case_id=second.id, staff=worker, now=planned)
    await plans.save_plan(
        session=session, case_id=second.id, data=data, staff=worker, settings=settings, now=planned
    )
    await plans.submit_plan(session=session, case_id=second.id, staff=worker, now=planned)
    await plans.return_plan(
        session=session, case_id=second.id, comment=TYPED["return_comment"], staff=boss,
        now=planned,
    )  # fmt: skip
    await plans.submit_plan(session=session, case_id=second.id, staff=worker, now=planned)
    approved = await plans.approve_plan(session=session, case_id=second.id, staff=boss, now=planned)
    signed = rome(2026, 12, 10, 12)
    await plans.record_signature(
        session=session, case_id=second.id, signed_on=signed.date(), staff=worker,
        settings=settings, now=signed,
    )  # fmt: skip
    await scans.attach_signed_scan(
        session=session, case_id=second.id, staff=worker, now=signed,
        content=b"%PDF-1.4\n%" + SCAN_MARK.encode() + b"\n" + NAME.encode() + b"\n%%EOF\n",
    )  # fmt: skip
    rows = await plans.get_plan(session=session, case_id=second.id, staff=worker)
    team = tuple(
        TeamInput(m.id, Responsible(m.staff_id, m.organisation), m.name or "", m.role)
        for m in rows.team
    )
    await plans.save_plan(
        session=session, case_id=second.id,
        data=as_input(rows, summary=TYPED["summary_after"], team=team), staff=worker,
        settings=settings, now=signed,
    )  # fmt: skip
    rows = await plans.get_plan(session=session, case_id=second.id, staff=worker)
    await reviews.record_review(
        session=session, case_id=second.id, held_on=MEETING.date(),
        progress={item.key: {"status": "in_progress", "note": TYPED["review_item"]}
                  for item in reviews.review_items(rows)},
        notes=TYPED["review_notes"], next_review_on=None, staff=worker, settings=settings,
        now=MEETING,
    )  # fmt: skip
    paid_for = next(s for s in rows.supports if s.kind == Kind.EMERGENCY_SUPPORT)
    await funds.record_payment(
        session=session, fund_id=fund.id, support_id=paid_for.id, plan_id=approved.id,
        amount_cents=300_00, paid_on=MEETING.date(), paid_to=Payee.LANDLORD,
        method=PaymentMethod.BANK_TRANSFER, actor=boss.actor, now=MEETING, note=TYPED["payment_note"],
    )  # fmt: skip
    follow_up = await book(session, settings, citizen, helpdesk, FOLLOW_UP, now=MEETING)
    session.add(
        WaitlistEntry(
            citizen_id=citizen.id, helpdesk_id=helpdesk.id, state=WaitlistState.EXPIRED.value,
            created_at=NOW - timedelta(days=3), offered_by=boss.actor,
        )
    )  # fmt: skip
    await session.flush()
    return Subject(
        citizen_id=citizen.id, case_ids=(first.id, second.id), helpdesk_id=helpdesk.id,
        codes=[cancelled.code, attended.code, came.code, follow_up.code], follow_up=follow_up,
        bystander_id=bystander.id,
    )  # fmt: skip


def _secrets(subject: Subject) -> list[str]:
    return [
        NAME,
        "Ermenegilda",
        "Zappacosta",
        PHONE,
        PHONE.removeprefix("+39"),
        EMAIL,
        FISCAL_CODE,
        str(TELEGRAM_ID),
        SCAN_MARK,
        *subject.codes,
        *TYPED.values(),
    ]


async def test_erasure_leaves_nothing_that_identifies_the_citizen(
    session: AsyncSession, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # The log as the process writes it (`shared.logs`), every logger at DEBUG.
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(logs.PayloadFilter())
    subject = await _everything(session, settings)
    secrets = _secrets(subject)
    stored = await _everything_stored(session)
    # The search finds each of them before (so it would find them after): the encrypted
    # ones only when it decrypts.
    assert set(_where(stored, secrets)) == set(secrets)
    assert ENCRYPTED_ONLY not in _where(await _everything_stored(session, decrypt=False), secrets)
    outbox_before = await session.scalar(
        select(func.count()).where(OutboxMessage.citizen_id == subject.citizen_id)
    )
    assert outbox_before
    slot = await session.get(Slot, subject.follow_up.slot_id)
    assert slot is not None and slot.taken == 1
    # What the figures will say: what they say once the appointment still to come is
    # cancelled, the one change the citizen asked for.
    async with session.begin_nested() as cancelling:
        await booking.cancel_booking(
            session=session, settings=settings, booking_id=subject.follow_up.id,
            by=CancelledBy.CITIZEN, actor="citizen:x", reason="erasure", now=ERASE_AT,
        )  # fmt: skip
        expected = await _figures(session, settings, [subject.helpdesk_id])
        await cancelling.rollback()
    assert expected != await _figures(session, settings, [subject.helpdesk_id])

    await erasure.erase_citizen(
        session=session, settings=settings, citizen_id=subject.citizen_id, now=ERASE_AT,
        actor="staff:carla",
    )  # fmt: skip

    stored = await _everything_stored(session)
    assert _where(stored, secrets) == {}
    assert [s for s in secrets if s.lower() in caplog.text.lower()] == []
    # Gianfranco's data is all there.
    assert _where(stored, ["Gianfranco Pellizzari", "3389876543", "4444555"]).keys() == {
        "Gianfranco Pellizzari", "3389876543", "4444555",
    }  # fmt: skip
    assert await _figures(session, settings, [subject.helpdesk_id]) == expected

    # The place is freed, the appointment cancelled as the citizen's own cancellation.
    await session.refresh(slot)
    assert slot.taken == 0
    follow_up = await session.get(Booking, subject.follow_up.id, populate_existing=True)
    assert follow_up is not None
    assert (follow_up.state, follow_up.cancel_reason) == (
        BookingState.CANCELLED_BY_CITIZEN, "erasure",
    )  # fmt: skip
    assert follow_up.code == erasure.erased_code(follow_up.id)
    # The tombstone: nothing identifying, the dates the figures count.
    citizen = await session.get(Citizen, subject.citizen_id, populate_existing=True)
    assert citizen is not None
    assert (citizen.name, citizen.phone, citizen.email, citizen.fiscal_code) == (None,) * 4
    assert (citizen.telegram_user_id, citizen.telegram_chat_id, citizen.consent_version) == (
        None, None, None,
    )  # fmt: skip
    assert (citizen.erased_at, citizen.consented_at, citizen.unreachable) == (ERASE_AT, NOW, True)
    assert await session.scalar(select(func.count()).select_from(SignedScan)) == 0
    assert (
        await session.scalar(
            select(func.count()).where(OutboxMessage.citizen_id == subject.citizen_id)
        )
        == 0
    )
    assert (
        await session.scalar(
            select(func.count()).where(CaseNamePrefix.case_id.in_(subject.case_ids))
        )
        == 0
    )
    assert (await session.scalars(select(PlanTeamMember.role))).all() == ["Case manager"]
    questionnaire = await session.scalar(
        select(Intake).where(Intake.citizen_id == subject.citizen_id)
    )
    assert questionnaire is not None
    assert (questionnaire.state, questionnaire.answers, questionnaire.history) == (
        IntakeState.COMPLETED, {}, [],
    )  # fmt: skip
    # The interview keeps its outcome; the support its amount and choices.
    interviews = (await session.scalars(select(Interview).order_by(Interview.id))).all()
    assert [(i.outcome, i.answers, i.referred_to) for i in interviews] == [
        ("referred", {}, None), ("admitted", {}, None),
    ]  # fmt: skip
    support = await session.scalar(
        select(PlanSupport).where(PlanSupport.kind == Kind.EMERGENCY_SUPPORT.value)
    )
    assert support is not None and support.amount_cents == 900_00
    assert support.details["paid_to"] == "landlord" and support.details["payee"] is None
    # One erasure event, by whoever erased, naming the citizen by id and nothing else.
    (event,) = (
        await session.scalars(select(AuditEvent).where(AuditEvent.action == "citizen.erase"))
    ).all()
    assert (event.actor, event.object_type, event.object_id, event.details) == (
        "staff:carla", "citizen", str(subject.citizen_id), {},
    )  # fmt: skip


async def test_the_citizen_of_the_data_copy_tests_is_erased_everywhere_too(
    session: AsyncSession, settings: Settings
) -> None:
    """`tests.shared.privacy.builders`' citizen (a row in every table, a plan summary read
    on Telegram among them), erased from the bot."""
    found = await privacy_builders.citizen_with_everything(session, settings, telegram_id=5_150_515)
    secrets = [
        privacy_builders.NAME, privacy_builders.PHONE, privacy_builders.EMAIL,
        privacy_builders.FISCAL_CODE, privacy_builders.WELLBEING_NOTE, privacy_builders.FREE_NOTE,
        privacy_builders.REVIEW_NOTE, privacy_builders.PAYMENT_NOTE, found.booking_code,
        found.plan_summary, "Immobiliare Naviglio",
    ]  # fmt: skip
    # (Not its Telegram id: the builder names its helpdesk after it.)
    assert set(_where(await _everything_stored(session), secrets)) == set(secrets)
    citizen = await session.get(Citizen, found.citizen_id)
    assert citizen is not None
    await citizens.erase(session=session, settings=settings, citizen=citizen, now=ERASE_AT)
    assert _where(await _everything_stored(session), secrets) == {}


async def test_a_second_erasure_changes_nothing(session: AsyncSession, settings: Settings) -> None:
    subject = await _everything(session, settings)
    await erasure.erase_citizen(
        session=session, settings=settings, citizen_id=subject.citizen_id, now=ERASE_AT,
        actor="staff:carla",
    )  # fmt: skip
    stored = await _everything_stored(session)
    shown = await _figures(session, settings, [subject.helpdesk_id])
    citizen = await session.get(Citizen, subject.citizen_id)
    assert citizen is not None
    # From the bot (an old screen's button), then as retention would.
    await citizens.erase(
        session=session, settings=settings, citizen=citizen, now=ERASE_AT + timedelta(days=1)
    )
    await erasure.erase_citizen(
        session=session, settings=settings, citizen_id=subject.citizen_id,
        now=ERASE_AT + timedelta(days=2), actor="system:retention",
    )  # fmt: skip
    # Nothing was erased twice, counted twice or recorded again.
    assert await _everything_stored(session) == stored
    assert await _figures(session, settings, [subject.helpdesk_id]) == shown


async def test_the_figures_count_everyone_after_everyone_is_erased(
    session: AsyncSession, settings: Settings
) -> None:
    """The hand-counted program of `tests.shared.figures.dataset`: each of its citizens is
    erased, and every figure is what it was, for the program and for each helpdesk."""
    built = await dataset.build(session)
    ids = (await session.scalars(select(Citizen.id).order_by(Citizen.id))).all()
    assert len(ids) == 12
    helpdesks = (built.h1, built.h2)

    def as_counted(found: list[Figures]) -> list[Figures]:
        # An open questionnaire erased counts as abandoned, as the expiry sweep would
        # leave it: its citizen won't finish it.
        return [
            dataclasses.replace(
                f, screening=dataclasses.replace(
                    f.screening, unfinished=0, expired=f.screening.unfinished + f.screening.expired
                ),
            )
            for f in found
        ]  # fmt: skip

    async def shown() -> list[Figures]:
        return [
            await figures(session=session, settings=settings, period=dataset.PERIOD,
                          helpdesk_id=h, now=dataset.NOW)
            for h in (None, *helpdesks)
        ]  # fmt: skip

    c3_booking = await session.scalar(
        select(Booking).where(Booking.state == BookingState.BOOKED.value)
    )
    assert c3_booking is not None and c3_booking.starts_at > dataset.NOW
    async with session.begin_nested() as cancelling:
        await booking.cancel_booking(
            session=session, settings=settings, booking_id=c3_booking.id,
            by=CancelledBy.CITIZEN, actor="citizen:x", reason="erasure", now=dataset.NOW,
        )  # fmt: skip
        expected = as_counted(await shown())
        await cancelling.rollback()
    before = await shown()
    assert before[0].screening.unfinished == 4 and before[0].funnel.count("completed")

    for citizen_id in ids:
        await erasure.erase_citizen(
            session=session, settings=settings, citizen_id=citizen_id, now=dataset.NOW,
            actor="system:test",
        )  # fmt: skip

    after = await shown()
    assert after == expected
    assert after[0].funnel == before[0].funnel
    assert await session.scalar(select(func.count()).where(Citizen.name.is_not(None))) == 0
    assert await session.scalar(select(func.count()).select_from(ScreeningTally))


async def test_anonymising_one_closed_case_keeps_the_citizen_and_their_other_case(
    session: AsyncSession, settings: Settings
) -> None:
    """Retention's rule for closed cases: the case's data goes, the citizen stays."""
    worker = member(await make_staff(session, "giulia"))
    helpdesk = await make_helpdesk(session, places=5)
    citizen, first = await make_candidate(session, name=NAME, phone=PHONE)
    made = await book(session, settings, citizen, helpdesk)
    await booking.mark_attended(
        session=session, booking_id=made.id, actor=worker.actor, now=TUESDAY_9
    )
    await cases.record_outcome(
        session=session, case_id=first.id, outcome="referred", reason=TYPED["outcome_reason"],
        referred_to=TYPED["referral"], staff=worker, now=TUESDAY_9,
        fields={"notes.notes": [TYPED["interview_notes"]]},
    )  # fmt: skip
    second = await cases.on_intake_confirmed(
        session=session, citizen_id=citizen.id, eligible=True, urgent=False, now=WEDNESDAY_9
    )
    later = WEDNESDAY_9 + timedelta(days=400)

    await erasure.anonymise_case(session=session, settings=settings, case_id=first.id, now=later)
    await erasure.anonymise_case(
        session=session, settings=settings, case_id=first.id, now=later + timedelta(days=1)
    )

    stored = await _everything_stored(session)
    assert (
        _where(stored, [TYPED["outcome_reason"], TYPED["referral"], TYPED["interview_notes"]]) == {}
    )
    kept = await session.get(Case, first.id, populate_existing=True)
    assert kept is not None and kept.anonymised_at == later and kept.close_reason == "referred"
    prefixes = set((await session.scalars(select(CaseNamePrefix.case_id))).all())
    assert prefixes == {second.id}
    assert await session.scalar(select(Citizen.name).where(Citizen.id == citizen.id)) == NAME
    with pytest.raises(CaseNotFound):
        await erasure.anonymise_case(session=session, settings=settings, case_id=99_999, now=later)


async def test_a_place_held_on_the_waiting_list_is_passed_on(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session, places=1)
    citizen, _case = await make_candidate(session, name=NAME, telegram_id=TELEGRAM_ID)
    starts = TUESDAY_9
    slot = Slot(helpdesk_id=helpdesk.id, starts_at=starts, ends_at=starts + timedelta(minutes=30),
                capacity=1, taken=1)  # fmt: skip
    session.add(slot)
    await session.flush()
    entry = WaitlistEntry(
        citizen_id=citizen.id, helpdesk_id=helpdesk.id, state=WaitlistState.OFFERED.value,
        created_at=NOW - timedelta(days=1), offered_slot_id=slot.id,
        offer_expires_at=NOW + timedelta(hours=2),
    )  # fmt: skip
    session.add(entry)
    await session.flush()

    await citizens.erase(session=session, settings=settings, citizen=citizen, now=NOW)

    await session.refresh(entry)
    await session.refresh(slot)
    assert (entry.state, slot.taken) == (WaitlistState.LEFT, 0)


async def test_an_erased_citizen_can_be_neither_booked_nor_written_to(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session, places=5)
    citizen, _case = await make_candidate(session, name=NAME, telegram_id=TELEGRAM_ID)
    await erasure.erase_citizen(
        session=session, settings=settings, citizen_id=citizen.id, now=NOW, actor="system:test"
    )
    with pytest.raises(NotAllowedToBook):
        await book(session, settings, citizen, helpdesk)
    queued = await outbox.enqueue(
        session=session, kind="test", citizen_id=citizen.id, due_at=NOW, idempotency_key="k"
    )
    assert queued is None
    # A new conversation on Telegram is a new citizen: nothing links it to the old one.
    assert await citizens.find_by_telegram(session=session, telegram_user_id=TELEGRAM_ID) is None


async def test_only_a_coordinator_erases_from_a_case_and_unknown_ids_are_refused(
    session: AsyncSession, settings: Settings
) -> None:
    citizen, case = await make_candidate(session, name=NAME)
    with pytest.raises(NotAllowed):
        await erasure.erase_on_request(
            session=session, settings=settings, case_id=case.id, role=Role.OPERATORE,
            actor="staff:giulia", now=NOW,
        )  # fmt: skip
    assert await session.scalar(select(Citizen.name).where(Citizen.id == citizen.id)) == NAME
    with pytest.raises(CaseNotFound):
        await erasure.erase_on_request(
            session=session, settings=settings, case_id=99_999, role=Role.COORDINATORE,
            actor="staff:carla", now=NOW,
        )  # fmt: skip
    with pytest.raises(CitizenNotFound):
        await erasure.erase_citizen(
            session=session, settings=settings, citizen_id=99_999, now=NOW, actor="staff:carla"
        )
    erased = await erasure.erase_on_request(
        session=session, settings=settings, case_id=case.id, role=Role.COORDINATORE,
        actor="staff:carla", now=NOW,
    )  # fmt: skip
    assert erased == citizen.id
    assert await session.scalar(select(Citizen.erased_at).where(Citizen.id == citizen.id)) == NOW


def test_erased_codes_are_unique_short_and_never_a_real_code() -> None:
    ids = (1, 35, 36, 1295, 1296, 36**7 - 1)
    codes = {erasure.erased_code(n) for n in ids}
    assert len(codes) == len(ids) and max(len(c) for c in codes) <= 8
    assert erasure.erased_code(36) == "~10" and "~" not in CODE_ALPHABET
    assert all(c.startswith("~") for c in codes)
