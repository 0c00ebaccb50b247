"""A citizen's copy of their data: every table that holds it, in both files, in their language."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit.models import AuditEvent
from shared.citizens.errors import CitizenNotFound
from shared.intake.models import Intake
from shared.privacy import my_data
from shared.settings import Settings
from tests.shared.cases.builders import NOW
from tests.shared.privacy import builders
from tests.shared.privacy.builders import check_pdf, check_record, citizen_with_everything, pdf_text


async def test_the_copy_holds_every_table_in_both_files(
    session: AsyncSession, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    everything = await citizen_with_everything(session, settings, telegram_id=4401)
    caplog.set_level(logging.DEBUG, logger="shared")
    files = await my_data.export(
        session=session, settings=settings, citizen_id=everything.citizen_id, now=NOW
    )
    check_record(json.loads(files.json), everything)
    check_pdf(pdf_text(files.pdf), everything)
    assert files.pdf_name == "ripartire-data-2026-12-07.pdf"
    assert files.json_name == "ripartire-data-2026-12-07.json"
    # What our code logs (the libraries' own DEBUG output is configured away by
    # shared.logs, and tests/test_log_privacy.py checks that).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("shared"))
    for secret in (builders.NAME, builders.PHONE, everything.booking_code, builders.FREE_NOTE):
        assert secret not in logged


async def test_the_copy_is_in_the_citizens_language(
    session: AsyncSession, settings: Settings
) -> None:
    everything = await citizen_with_everything(session, settings, telegram_id=4402, language="en")
    data = await my_data.collect(
        session=session, settings=settings, citizen_id=everything.citizen_id, now=NOW
    )
    text = pdf_text(my_data.as_pdf(data))
    for expected in ("Your data in Ripartire", "Your answers", "Individualized Intervention Plan"):
        assert expected in text
    assert data.record["language"] == "en"
    answers = {a["key"]: a for a in data.record["questionnaire"]["answers"]}
    assert answers["residence"]["text"] == "Yes, I am"


async def test_the_access_is_audited_by_ids_only(session: AsyncSession, settings: Settings) -> None:
    everything = await citizen_with_everything(session, settings, telegram_id=4403)
    await my_data.export(
        session=session, settings=settings, citizen_id=everything.citizen_id, now=NOW
    )
    [event] = (
        await session.scalars(select(AuditEvent).where(AuditEvent.action == "citizen.data_export"))
    ).all()
    assert (event.actor, event.object_type, event.object_id, event.details) == (
        f"citizen:{everything.citizen_id}", "citizen", str(everything.citizen_id), {},
    )  # fmt: skip


async def test_an_answer_to_a_step_since_removed_is_still_in_the_copy(
    session: AsyncSession, settings: Settings
) -> None:
    everything = await citizen_with_everything(session, settings, telegram_id=4404)
    intake = await session.scalar(select(Intake).where(Intake.citizen_id == everything.citizen_id))
    assert intake is not None
    intake.answers = {**intake.answers, "old_question": "kept"}
    await session.flush()
    data = await my_data.collect(
        session=session, settings=settings, citizen_id=everything.citizen_id, now=NOW
    )
    answers = {a["key"]: a for a in data.record["questionnaire"]["answers"]}
    assert answers["old_question"]["answer"] == "kept"
    assert "Lucia Bianchi" in pdf_text(my_data.as_pdf(data))


async def test_a_citizen_who_is_not_there_has_no_copy(
    session: AsyncSession, settings: Settings
) -> None:
    with pytest.raises(CitizenNotFound):
        await my_data.collect(session=session, settings=settings, citizen_id=999_999, now=NOW)
