"""Every message the outbox can send has a name on the case page (never its internal kind)."""

from __future__ import annotations

from shared.booking.messages import MessageKind as BookingMessage
from shared.cases.labels import MESSAGES
from shared.cases.messages import MessageKind as CaseMessage
from shared.plans.messages import MessageKind as PlanMessage


def test_every_message_kind_has_a_label() -> None:
    kinds = {k.value for enum in (BookingMessage, CaseMessage, PlanMessage) for k in enum}
    assert kinds - MESSAGES.keys() == set()
