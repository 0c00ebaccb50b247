"""Citizens on Telegram: consent, language, erasure, and updates already handled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from shared.audit import service as audit
from shared.citizens.models import Channel, Citizen, ConsentRefusal, ProcessedUpdate
from shared.db import upsert_insert
from shared.i18n import normalise_language
from shared.privacy import erasure
from shared.privacy.notice import PRIVACY_NOTICE_VERSION as PRIVACY_NOTICE_VERSION
from shared.settings import Settings


async def find_by_telegram(*, session: AsyncSession, telegram_user_id: int) -> Citizen | None:
    return await session.scalar(select(Citizen).where(Citizen.telegram_user_id == telegram_user_id))


async def give_consent(
    *,
    session: AsyncSession,
    telegram_user_id: int,
    chat_id: int,
    language: str,
    now: datetime,
    found: Delivery | None = None,
) -> Citizen:
    """Record that a Telegram user accepted the current privacy notice (creating the citizen).

    `found`: the update's delivery, when the caller has already looked its sender up.
    """
    if found is not None:
        citizen = found.citizen
    else:
        citizen = await find_by_telegram(session=session, telegram_user_id=telegram_user_id)
    if citizen is None:
        citizen = Citizen(channel=Channel.TELEGRAM.value, telegram_user_id=telegram_user_id)
        session.add(citizen)
    citizen.telegram_chat_id = chat_id
    citizen.language = normalise_language(language)
    citizen.consent_version = PRIVACY_NOTICE_VERSION
    citizen.consented_at = now
    citizen.unreachable = False
    await session.flush()
    await audit.record(
        session=session,
        actor=f"citizen:{citizen.id}",
        action="citizen.consent",
        object_type="citizen",
        object_id=str(citizen.id),
        details={"notice_version": PRIVACY_NOTICE_VERSION},
    )
    return citizen


async def mark_reachable(*, session: AsyncSession, citizen: Citizen, now: datetime) -> bool:
    """The citizen wrote to the bot: if they had blocked it, they can be reached again.

    Recorded, so that the case page shows when messages to them resumed. False if they
    were not marked unreachable (nothing changes, nothing is recorded).
    """
    if not citizen.unreachable:
        return False
    citizen.unreachable = False
    citizen.updated_at = now
    await session.flush()
    await audit.record(
        session=session,
        actor=f"citizen:{citizen.id}",
        action="citizen.reachable",
        object_type="citizen",
        object_id=str(citizen.id),
    )
    return True


async def refuse_consent(*, session: AsyncSession, now: datetime) -> None:
    """Count a refusal of the privacy notice; nothing about the person is stored."""
    session.add(ConsentRefusal(notice_version=PRIVACY_NOTICE_VERSION, at=now))
    await session.flush()


async def set_language(*, session: AsyncSession, citizen: Citizen, language: str) -> Citizen:
    citizen.language = normalise_language(language)
    await session.flush()
    return citizen


async def erase(
    *, session: AsyncSession, settings: Settings, citizen: Citizen, now: datetime
) -> None:
    """Erase a citizen at their request (/cancella): `shared.privacy.erasure.erase_citizen`."""
    await erasure.erase_citizen(
        session=session,
        settings=settings,
        citizen_id=citizen.id,
        now=now,
        actor=f"citizen:{citizen.id}",
    )


async def first_delivery(*, session: AsyncSession, update_id: int, now: datetime) -> bool:
    """True the first time an update id is seen; False for a redelivery (handle it once)."""
    inserted = await session.scalar(
        upsert_insert(session, ProcessedUpdate)
        .values(update_id=update_id, processed_at=now)
        .on_conflict_do_nothing(index_elements=[ProcessedUpdate.update_id])
        .returning(ProcessedUpdate.update_id)
    )
    return inserted is not None


@dataclass(frozen=True, slots=True)
class Delivery:
    """An update seen for the first time, and who sent it (None: not a citizen yet)."""

    citizen: Citizen | None


async def deliver(
    *, session: AsyncSession, update_id: int, telegram_user_id: int, now: datetime
) -> Delivery | None:
    """Record the update id and find its sender, in one statement; None for a redelivery.

    The citizen's columns come back in the INSERT's RETURNING (one scalar subquery each:
    SQLite has no INSERT inside a WITH), and become the session's persistent `Citizen`,
    as if loaded by a query: every update saves a round trip.
    """
    columns = Citizen.__table__.columns
    sender = Citizen.telegram_user_id == telegram_user_id
    row = (
        await session.execute(
            upsert_insert(session, ProcessedUpdate)
            .values(update_id=update_id, processed_at=now)
            .on_conflict_do_nothing(index_elements=[ProcessedUpdate.update_id])
            .returning(
                ProcessedUpdate.update_id,
                *(select(c).where(sender).scalar_subquery().label(c.key) for c in columns),
            )
        )
    ).one_or_none()
    if row is None:
        return None
    values = row._mapping
    if values["id"] is None:
        return Delivery(None)
    found = session.identity_map.get(identity_key(Citizen, values["id"]))
    if isinstance(found, Citizen):
        return Delivery(found)
    citizen = Citizen(**{c.key: values[c.key] for c in columns})
    make_transient_to_detached(citizen)
    session.add(citizen)
    return Delivery(citizen)


async def forget_processed_updates(*, session: AsyncSession, now: datetime) -> int:
    """Drop update ids older than Telegram's redelivery window (a day; a week to be safe)."""
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < now - timedelta(days=7))
    )
    return int(getattr(result, "rowcount", 0) or 0)
