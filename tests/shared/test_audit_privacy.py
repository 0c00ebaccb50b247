"""The audit log names people and things by id only: no booking codes, names, phones,
answers or free text in any event's details (SPEC J8: the log outlives an erasure)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.booking import moderation
from shared.booking import service as booking
from shared.booking.service import CancelledBy
from shared.cases import listing
from shared.cases import service as cases
from shared.cases.listing import CaseFilters
from shared.citizens import service as citizens
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff import sessions
from shared.staff.models import Role
from tests.factories import make_helpdesk
from tests.shared.cases.builders import (
    NOW,
    TUESDAY_9,
    WEDNESDAY_9,
    make_candidate,
    make_staff,
    member,
)

NAME, PHONE, FISCAL_CODE = "Maria Rossi", "+393316938049", "RSSMRA85D03F205P"
# Free text staff type about the citizen: it belongs to the booking or the case, not the log.
STAFF_NOTE = "Maria ha telefonato dal 3316938049"


async def _everything_logged(session: AsyncSession) -> str:
    events = (await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
    assert events
    return "\n".join(
        f"{e.actor} {e.action} {e.object_type} {e.object_id} {json.dumps(e.details, ensure_ascii=False)}"
        for e in events
    ).lower()


def _leaks(logged: str, secrets: list[str]) -> list[str]:
    return [secret for secret in secrets if secret.lower() in logged]


async def test_a_citizens_bookings_leave_no_code_or_personal_data_in_the_log(
    session: AsyncSession, settings: Settings
) -> None:
    helpdesk = await make_helpdesk(session)
    citizen, _case = await make_candidate(
        session, name=NAME, phone=PHONE, fiscal_code=FISCAL_CODE, telegram_id=4242
    )
    actor = f"citizen:{citizen.id}"
    made = await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
        starts_at=TUESDAY_9, actor=actor, now=NOW, by_citizen=True,
    )  # fmt: skip
    moved = await booking.move_booking(
        session=session, settings=settings, booking_id=made.id, helpdesk_id=helpdesk.id,
        starts_at=WEDNESDAY_9, by=CancelledBy.CITIZEN, actor=actor, citizen_id=citizen.id,
        now=NOW,
    )  # fmt: skip
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=moved.id, by=CancelledBy.CITIZEN,
        actor=actor, citizen_id=citizen.id, now=NOW,
    )  # fmt: skip
    # Staff book for them, then cancel with a note; a moderated helpdesk's request too.
    by_staff = await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
        starts_at=TUESDAY_9, actor="staff:anna", now=NOW,
    )  # fmt: skip
    await booking.cancel_booking(
        session=session, settings=settings, booking_id=by_staff.id, by=CancelledBy.STAFF,
        actor="staff:anna", reason=STAFF_NOTE, now=NOW,
    )  # fmt: skip
    await moderation.set_moderated(
        session=session, helpdesk_id=helpdesk.id, moderated=True, actor="staff:anna"
    )
    requested = await booking.book_slot(
        session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
        starts_at=WEDNESDAY_9, actor=actor, now=NOW, by_citizen=True,
    )  # fmt: skip
    await moderation.confirm_request(
        session=session, settings=settings, booking_id=requested.id, actor="staff:anna", now=NOW
    )
    codes = [made.code, moved.code, by_staff.code, requested.code]
    # The citizen erases their data with the last booking still active (/cancella).
    await citizens.erase(
        session=session, settings=settings, citizen=citizen, now=NOW + timedelta(minutes=5)
    )

    logged = await _everything_logged(session)
    assert "booking.create" in logged and "citizen.erase" in logged
    assert _leaks(logged, [*codes, "maria", "rossi", "3316938049", FISCAL_CODE]) == []
    assert "telefonato" not in logged


async def test_staff_free_text_and_searches_stay_out_of_the_log(
    session: AsyncSession, settings: Settings
) -> None:
    anna = member(await make_staff(session, "anna", Role.COORDINATORE))
    _citizen, case = await make_candidate(session, name=NAME, phone=PHONE)
    page = await listing.list_cases(
        session=session, settings=settings, staff=anna, filters=CaseFilters(text="Rossi")
    )
    assert [row.id for row in page.rows] == [case.id]
    await cases.override_eligibility(
        session=session, settings=settings, case_id=case.id, eligible=False, reason=STAFF_NOTE,
        staff=anna, now=NOW,
    )  # fmt: skip
    await cases.close_case(session=session, case_id=case.id, reason=STAFF_NOTE, staff=anna, now=NOW)

    logged = await _everything_logged(session)
    assert "case.search" in logged and "case.close" in logged
    assert _leaks(logged, ["rossi", "3316938049", "telefonato"]) == []


async def test_a_failed_sign_in_names_the_account_by_id_or_not_at_all(
    session: AsyncSession, settings: Settings
) -> None:
    anna = await staff.add_user(
        session=session, username="anna.verdi", password="Girasole-Lampione-42",
        role=Role.COORDINATORE,
    )  # fmt: skip
    policy = sessions.SessionPolicy.from_settings(settings)
    for username in ("Anna.Verdi", "mario.bianchi"):
        with pytest.raises(sessions.SignInRefused):
            await sessions.sign_in(
                session=session, username=username, password="Sbagliata!2026", now=NOW,
                policy=policy,
            )  # fmt: skip
    failed = (
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "staff.login_failed")
            .order_by(AuditEvent.id)
        )
    ).all()
    assert [(e.object_type, e.object_id) for e in failed] == [
        ("staff_user", str(anna.id)),
        ("staff_user", None),
    ]
    logged = await _everything_logged(session)
    assert _leaks(logged, ["anna.verdi", "mario", "bianchi", "sbagliata"]) == []
