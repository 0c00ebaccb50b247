"""The citizen's plan on Telegram: "I've read it" under its summary (SPEC J3, J5).

The summary comes through the outbox (`bot.delivery`); its button is
`pr:<plan>:<version>:<hash>`. The data can be forged or stale, so the service decides:
a plan that isn't the citizen's gets the answer any unknown button gets, and a plan that
changed since the summary was sent gets the news (and the new summary, when there is one).
"""

from __future__ import annotations

from telegram.ext import BaseHandler, CallbackQueryHandler

from bot.callbacks import Callback, Cb, parse
from bot.replies import Reply, Send, Toast
from bot.screens.outbox import plan_summary_message
from bot.turn import Turn, turn
from shared.i18n import N_
from shared.limits import MAX_ID
from shared.plans import acknowledgements
from shared.plans.acknowledgements import SHOWN_HASH_CHARS, PlanChanged
from shared.plans.errors import PlanNotFound
from shared.plans.models import PlanState

THANKS = N_("🙏 Thank you! We've noted that you read your plan (version {version}).")
ALREADY = N_("You had already told us you read it: thank you! 🙏")
CHANGED_HERE_IT_IS = N_(
    "📝 Your plan has changed since that message, so we haven't noted anything. "
    "Here it is as it is now:"
)
CHANGED_WAIT = N_(
    "Your plan has changed since that message, so we haven't noted anything. As soon as "
    "the new version is ready, we'll send you its summary here."
)
CLOSED = N_("This plan has been closed: there's nothing to confirm any more. Thank you!")
# What any button that isn't ours, or isn't theirs, gets (`start.on_unknown`).
NOT_VALID = N_("This button is no longer valid.")


def _id(callback: Callback | None, index: int) -> int | None:
    value = callback.int_arg(index) if callback is not None else None
    return value if value is not None and 0 < value <= MAX_ID else None


@turn
async def on_plan_read(turn_: Turn) -> list[Reply]:
    """`pr:<plan>:<version>:<hash>`: note that the citizen read their plan's summary."""
    t = turn_.t
    callback = parse(turn_.callback_data)
    plan_id, version = _id(callback, 0), _id(callback, 1)
    shown = callback.args[2] if callback is not None and len(callback.args) > 2 else ""
    citizen = turn_.citizen
    if citizen is None or plan_id is None or version is None or not shown:
        return [Toast(t(NOT_VALID), alert=True)]
    try:
        done = await acknowledgements.acknowledge_plan(
            session=turn_.session,
            citizen_id=citizen.id,
            plan_id=plan_id,
            version=version,
            shown=shown,
            now=turn_.now,
        )
    except PlanNotFound:
        return [Toast(t(NOT_VALID), alert=True)]
    except PlanChanged as changed:
        if changed.current is not None:
            text, keyboard = plan_summary_message(t, changed.current, t(CHANGED_HERE_IT_IS))
            return [Send(text, keyboard)]
        if changed.state == PlanState.CLOSED.value:
            return [Send(t(CLOSED))]
        return [Send(t(CHANGED_WAIT))]
    if done.new:
        return [Send(t(THANKS, version=done.acknowledgement.version))]
    return [Send(t(ALREADY))]


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    shape = rf"^{Cb.PLAN_READ}:\d{{1,10}}:\d{{1,10}}:[0-9a-f]{{{SHOWN_HASH_CHARS}}}$"
    return [CallbackQueryHandler(on_plan_read, pattern=shape)]
