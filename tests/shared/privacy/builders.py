"""A citizen with rows in every table that holds their data, and what their copy must say.

Made through the services, as the program makes them: the questionnaire confirmed, a
booking attended, an interview with notes, an admitted outcome, a plan approved,
signed, reviewed and paid, its summary read on Telegram, and the messages all that
queued. Only the waiting-list entry is written as a row (joining needs a standing this
path no longer has).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from typing import Any

from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking.models import Booking, WaitlistEntry, WaitlistState
from shared.cases import service as cases
from shared.citizens.models import Citizen
from shared.funds import service as funds
from shared.funds.models import Payee, PaymentMethod
from shared.intake.models import Intake
from shared.outbox.models import OutboxMessage
from shared.plans import acknowledgements, reviews
from shared.plans import service as plans
from shared.plans.catalog import Kind
from shared.plans.messages import plan_summary
from shared.privacy import my_data, notice
from shared.settings import Settings
from tests.factories import make_helpdesk
from tests.shared.cases.builders import NOW, checked_in
from tests.shared.plans.builders import (
    complete_input,
    emergency,
    job_search,
    make_fund,
    make_people,
)

SIGNED_ON = date(2026, 12, 7)
NAME = "Lucia Bianchi"
PHONE = "+393491528955"
EMAIL = "lucia.bianchi@example.org"
FISCAL_CODE = "BNCLCU80A41F205Z"
WELLBEING_NOTE = "Dorme poco da quando ha perso il lavoro."
FREE_NOTE = "Vorrebbe lavorare nella logistica."
REVIEW_NOTE = "Ha mandato il curriculum a tre aziende."
PAYMENT_NOTE = "Affitto di dicembre"


@dataclass(frozen=True)
class Everything:
    citizen_id: int
    telegram_id: int
    case_id: int
    plan_id: int
    booking_code: str
    plan_summary: str
    # The kinds of the messages queued for them, in the order they are due.
    message_kinds: tuple[str, ...]


async def citizen_with_everything(
    session: AsyncSession, settings: Settings, *, telegram_id: int, language: str = "it"
) -> Everything:
    people = await make_people(session)
    helpdesk = await make_helpdesk(session, name=f"Sportello {telegram_id}", places=5)
    citizen, case, booked = await checked_in(
        session, settings, helpdesk, name=NAME, phone=PHONE, fiscal_code=FISCAL_CODE,
        telegram_id=telegram_id,
    )  # fmt: skip
    citizen.language = language
    citizen.email = EMAIL
    intake = await session.scalar(select(Intake).where(Intake.citizen_id == citizen.id))
    assert intake is not None
    intake.answers = {**intake.answers, "email": EMAIL}
    await cases.save_interview(
        session=session,
        case_id=case.id,
        fields={
            "work.last_job": ["Magazziniera"],
            "household.monthly_income": ["800"],
            "wellbeing.notes": [WELLBEING_NOTE],
            "notes.notes": [FREE_NOTE],
        },
        staff=people.worker,
        now=NOW,
    )
    await cases.record_outcome(
        session=session, case_id=case.id, outcome="admitted", staff=people.worker, now=NOW
    )
    fund = await make_fund(session, cents=500_000)
    data = complete_input(emergency(fund_id=fund.id), job_search())
    await plans.start_plan(session=session, case_id=case.id, staff=people.worker, now=NOW)
    await plans.save_plan(
        session=session, case_id=case.id, data=data, staff=people.worker, settings=settings,
        now=NOW,
    )  # fmt: skip
    await plans.submit_plan(session=session, case_id=case.id, staff=people.worker, now=NOW)
    await plans.approve_plan(session=session, case_id=case.id, staff=people.boss, now=NOW)
    await plans.record_signature(
        session=session, case_id=case.id, signed_on=SIGNED_ON, staff=people.worker,
        settings=settings, now=NOW,
    )  # fmt: skip
    rows = await plans.get_plan(session=session, case_id=case.id, staff=people.worker)
    await reviews.record_review(
        session=session, case_id=case.id, held_on=SIGNED_ON,
        progress={i.key: {"status": "in_progress", "note": ""} for i in reviews.review_items(rows)},
        notes=REVIEW_NOTE, next_review_on=None, staff=people.worker, settings=settings, now=NOW,
    )  # fmt: skip
    [support] = [s for s in rows.supports if s.kind == Kind.EMERGENCY_SUPPORT.value]
    await funds.record_payment(
        session=session, fund_id=fund.id, support_id=support.id, plan_id=rows.plan.id,
        amount_cents=30_000, paid_on=SIGNED_ON, paid_to=Payee.LANDLORD,
        method=PaymentMethod.BANK_TRANSFER, actor="staff:carla", now=NOW, note=PAYMENT_NOTE,
    )  # fmt: skip
    summary = await plan_summary(session=session, plan=rows.plan)
    await acknowledgements.acknowledge_plan(
        session=session, citizen_id=citizen.id, plan_id=rows.plan.id, version=rows.plan.version,
        shown=summary.content_hash()[:12], now=NOW,
    )  # fmt: skip
    session.add(
        WaitlistEntry(citizen_id=citizen.id, state=WaitlistState.LEFT.value, created_at=NOW)
    )
    await session.flush()
    kinds = await session.scalars(
        select(OutboxMessage.kind)
        .where(OutboxMessage.citizen_id == citizen.id)
        .order_by(OutboxMessage.due_at, OutboxMessage.id)
    )
    code = await session.scalar(select(Booking.code).where(Booking.id == booked.id))
    assert code is not None
    found = await session.get(Citizen, citizen.id)
    assert found is not None
    return Everything(
        citizen_id=citizen.id,
        telegram_id=telegram_id,
        case_id=case.id,
        plan_id=rows.plan.id,
        booking_code=code,
        plan_summary=rows.plan.summary,
        message_kinds=tuple(kinds.all()),
    )


def pdf_text(content: bytes) -> str:
    """The PDF's text, its lines joined by spaces (a value may wrap)."""
    reader = PdfReader(io.BytesIO(content))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def check_record(record: dict[str, Any], everything: Everything) -> None:
    """Every table the citizen has rows in is in the JSON copy, with their own values."""
    assert record["format"] == my_data.FORMAT
    person = record["person"]
    assert (person["name"], person["phone"], person["email"], person["fiscal_code"]) == (
        NAME, PHONE, EMAIL, FISCAL_CODE,
    )  # fmt: skip
    assert person["telegram_user_id"] == everything.telegram_id
    assert record["consent"]["notice_version"] == notice.VERSION
    assert record["consent"]["accepted_at"] is not None
    answers = {a["key"]: a for a in record["questionnaire"]["answers"]}
    assert answers["residence"]["answer"] == "yes"
    assert answers["household"]["answer"] == {"members": 3, "minors": 1}
    assert answers["email"]["answer"] == EMAIL
    [booking] = record["bookings"]
    assert booking["code"] == everything.booking_code
    assert booking["state"] == "attended"
    assert [entry["state"] for entry in record["waiting_list"]] == ["left"]
    [case] = record["cases"]
    assert case["reference"] == everything.case_id
    interview = case["interview"]
    assert interview["outcome"] == "admitted"
    # Encrypted at rest, read through the column types: the notes as written.
    assert interview["answers"]["wellbeing"]["notes"] == WELLBEING_NOTE
    assert interview["answers"]["notes"]["notes"] == FREE_NOTE
    plan = case["plan"]
    assert plan["state"] == "active"
    assert plan["summary"] == everything.plan_summary
    assert [o["objective"] for o in plan["objectives"]] == ["Trovare un lavoro stabile"]
    assert [c["what"] for c in plan["commitments"]] == ["Aggiornare il curriculum"]
    assert {s["kind"] for s in plan["supports"]} == {"emergency_support", "job_search"}
    assert [r["notes"] for r in plan["reviews"]] == [REVIEW_NOTE]
    assert [(p["amount_cents"], p["note"]) for p in plan["payments"]] == [(30_000, PAYMENT_NOTE)]
    assert [a["version"] for a in plan["read_on_telegram"]] == [1]
    assert plan["changes"], "the plan's kept changes"
    assert tuple(m["kind"] for m in record["messages"]) == everything.message_kinds
    assert {"reminder_day_before", "plan_approved", "plan_active"} <= set(
        everything.message_kinds
    ), everything.message_kinds


def check_pdf(text: str, everything: Everything) -> None:
    """The readable copy says the same, with the labels the citizen reads (Italian)."""
    for expected in (
        "I tuoi dati in Ripartire",
        NAME,
        EMAIL,
        FISCAL_CODE,
        "+39 349 152 8955",
        f"Versione che hai accettato {notice.VERSION}",
        # The questionnaire's own titles and labels (questionnaire.summary).
        "Le tue risposte",
        "Residenza",
        f"Appuntamento {everything.booking_code}",
        f"Caso {everything.case_id}",
        "Colloquio",
        WELLBEING_NOTE,
        FREE_NOTE,
        "Piano di Intervento Individualizzato",
        everything.plan_summary,
        "Trovare un lavoro stabile",
        "Aggiornare il curriculum",
        "Supporto economico d'emergenza",
        REVIEW_NOTE,
        PAYMENT_NOTE,
        "Letto su Telegram",
        "Messaggi che ti abbiamo mandato",
        "Piano approvato: invito a firmarlo",
        "Lista d'attesa",
    ):
        assert expected in text, expected
