"""The audit log (coordinators): browse and filter, newest first. Read-only: no route writes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from dashboard.deps import COORDINATION, Session, Viewer, allow, settings_of
from dashboard.limits import FIELD_LIMITS, TOO_LONG
from dashboard.params import BAD_DAY, BadDay, QueryId, QueryText, read_day
from dashboard.templating import render
from shared.audit import phrases, queries
from shared.i18n import N_, Translator
from shared.limits import DAY_RANGE

router = APIRouter()
Coordinator = Annotated[Viewer, Depends(allow(*COORDINATION))]
# The filter form's fields, as typed: checked below, each next to its field.
Filter = QueryText

BAD_DATE = N_("Write the day like 2026-03-31, or pick it from the calendar.")
BAD_RANGE = N_("The end of the period must not be before its start.")
# The longest value of each text filter: the width of the column it is matched against.
TEXT_FILTERS = {
    "actor": FIELD_LIMITS.actor,
    "action": FIELD_LIMITS.action,
    "object_type": FIELD_LIMITS.object_type,
    "object_id": FIELD_LIMITS.object_id,
}


def action_choices(t: Translator, chosen: str) -> list[tuple[str, str]]:
    """The action filter's choices: every action by its phrase, and the kinds of action
    (all of a booking's, a case's...) by theirs; a value typed into the address is kept."""
    kinds = {f"{kind}.": text for kind, text in phrases.FALLBACKS.items()}
    choices = sorted(
        {**{code: t(p.text) for code, p in phrases.PHRASES.items()}, **{
            code: t(N_("{kind}: everything"), kind=t(text)) for code, text in kinds.items()
        }}.items(),
        key=lambda item: item[1].casefold(),
    )  # fmt: skip
    if chosen and chosen not in dict(choices):
        choices.insert(0, (chosen, t(N_("As in the address"))))
    return [("", t(N_("Any action"))), *choices]


def object_choices(t: Translator, chosen: str) -> list[tuple[str, str]]:
    """The object filter's choices, by the kinds' names (a value from the address kept)."""
    choices = sorted(
        ((kind, t(names[0])) for kind, names in phrases.OBJECTS.items()),
        key=lambda item: item[1].casefold(),
    )
    if chosen and chosen not in phrases.OBJECTS:
        choices.insert(0, (chosen, t(N_("As in the address"))))
    return [("", t(N_("Anything"))), *choices]


@router.get("/audit")
async def audit_log(
    request: Request,
    session: Session,
    viewer: Coordinator,
    actor: Filter = "",
    action: Filter = "",
    object_type: Filter = "",
    object_id: Filter = "",
    since: Filter = "",
    until: Filter = "",
    before: QueryId = None,
) -> HTMLResponse:
    tz = settings_of(request).tz
    values = {
        "actor": actor.strip(),
        "action": action.strip(),
        "object_type": object_type.strip(),
        "object_id": object_id.strip(),
        "since": since.strip(),
        "until": until.strip(),
    }
    t = Translator(viewer.language)
    errors: dict[str, str] = {}
    for name, max_length in TEXT_FILTERS.items():
        if len(values[name]) > max_length:
            errors[name] = t(TOO_LONG, max_length=max_length)
    days: dict[str, date | None] = {}
    for name in ("since", "until"):
        try:
            days[name] = read_day(values[name])
        except BadDay as exc:
            errors[name] = t(BAD_DATE if exc.message == BAD_DAY else exc.message, **DAY_RANGE)
    first, last = days.get("since"), days.get("until")
    if first is not None and last is not None and last < first:
        errors["until"] = t(BAD_RANGE)
    page = queries.AuditPage(events=[], older=None)
    if not errors:
        filters = queries.AuditFilter(
            actor=values["actor"],
            action=values["action"],
            object_type=values["object_type"],
            object_id=values["object_id"],
            since=datetime.combine(first, time.min, tzinfo=tz) if first else None,
            # The last day is included: up to the start of the next one.
            until=datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz) if last else None,
        )
        page = await queries.browse(
            session=session,
            filters=filters,
            before=before,
        )
    known = await queries.known_for(session=session, events=page.events)
    kept = {key: value for key, value in values.items() if value}
    return render(
        request,
        "audit/list.html",
        {
            "values": values,
            "errors": errors,
            "events": [
                (
                    event,
                    phrases.describe(event.action, event.details, known, object_id=event.object_id),
                )
                for event in page.events
            ],
            "action_choices": action_choices(t, values["action"]),
            "object_choices": object_choices(t, values["object_type"]),
            "object_label": phrases.object_label,
            "older_url": "/audit?" + urlencode({**kept, "before": page.older})
            if page.older is not None
            else "",
            "newest_url": ("/audit?" + urlencode(kept)) if before else "",
        },
        status_code=400 if errors else 200,
    )
