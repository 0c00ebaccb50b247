"""What a case tells the citizen on Telegram, queued in the outbox (delivered by the bot).

One event: a coordinator decided that a citizen who could not book (the questionnaire,
or an earlier decision, ruled them out) is eligible (`service.override_eligibility`).
The message tells them they can now book an interview, with a "Book" button.

Only the case's id travels in the payload; the bot renders the message from the data as
they are when it is sent, and withdraws it if the citizen's standing
(`shared.citizens.standing`) is no longer "may book" by then. Taking the decision back
withdraws it while it waits. A citizen without a Telegram chat (came by phone or at the
desk) gets nothing queued: staff tell them.

The kinds are their own `MessageKind`, like `shared.booking.messages`' and
`shared.plans.messages`' ones; their values start with "case_" so they can't meet
another domain's.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from shared.cases.models import Case
from shared.citizens.models import Citizen
from shared.outbox import service as outbox


class MessageKind(StrEnum):
    # Payload: {"case_id": int}.
    CASE_ELIGIBLE = "case_eligible"


def eligibility_subject(case: Case) -> str:
    return f"case:{case.id}:eligibility"


async def queue_may_book(
    *, session: AsyncSession, citizen: Citizen, case: Case, now: datetime
) -> None:
    """Tell the citizen that a coordinator admitted them: they can now book an interview."""
    if citizen.telegram_chat_id is None:
        return
    # One message per decision: deciding again later (after taking it back) tells again.
    key = f"{eligibility_subject(case)}:eligible:{int(now.timestamp())}"
    await outbox.enqueue(
        session=session,
        kind=MessageKind.CASE_ELIGIBLE.value,
        citizen_id=citizen.id,
        due_at=now,
        idempotency_key=key,
        payload={"case_id": case.id},
        subject=eligibility_subject(case),
    )


async def withdraw_may_book(*, session: AsyncSession, case: Case) -> None:
    """The decision was taken back: the message, if still waiting, no longer applies."""
    await outbox.cancel_pending(session=session, subject=eligibility_subject(case))
