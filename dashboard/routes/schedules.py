"""Helpdesks, weekly hours, closures and extra openings (coordinators only, SPEC J6).

Closing a day, ending or removing hours and withdrawing an extra opening can leave
booked citizens outside the opening hours: those bookings are listed on a page where
staff move or cancel each one with the agenda's actions, so none is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from typing import Annotated, Any

from babel import Locale
from babel.dates import get_day_names
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from dashboard.deps import COORDINATION, Session, Viewer, allow, settings_of
from dashboard.limits import TOO_LONG
from dashboard.pages import redirect_with_notice, render_form_page
from dashboard.params import BadDay, FormText, QueryWord, RecordId, read_day, storable_form
from dashboard.routes.agenda import (
    STATE_LABELS,
    date_labeler,
    local_today,
    notice_of,
)
from shared.booking import hours, moderation
from shared.booking.agenda import AgendaEntry
from shared.booking.errors import (
    BookingError,
    HelpdeskNotFound,
    ScheduleItemNotFound,
    TextTooLong,
)
from shared.booking.models import Directions, Helpdesk
from shared.i18n import DEFAULT_LANGUAGE, N_, Translator, available_languages
from shared.limits import DAY_RANGE

router = APIRouter()
Coordinator = Annotated[Viewer, Depends(allow(*COORDINATION))]

NOTICES = {
    "helpdesk_created": ("success", N_("Helpdesk created. Now add its weekly hours.")),
    "helpdesk_saved": ("success", N_("Helpdesk saved.")),
    "activated": ("success", N_("The helpdesk takes bookings again.")),
    "deactivated": (
        "success",
        N_("The helpdesk takes no new bookings; the existing ones stay."),
    ),
    "rule_added": ("success", N_("Weekly hours added.")),
    "rule_ended": ("success", N_("Weekly hours ended.")),
    "rule_deleted": ("success", N_("Weekly hours deleted.")),
    "closure_added": ("success", N_("Closure added. No booking was affected.")),
    "closure_affects": (
        "warning",
        N_("Closure added. The bookings below fall inside it: move or cancel each one."),
    ),
    "closure_deleted": ("success", N_("Closure removed: those hours are open again.")),
    "extra_added": ("success", N_("Extra opening added.")),
    "extra_deleted": ("success", N_("Extra opening removed.")),
    "stranded": (
        "warning",
        N_("Some bookings are now outside the opening hours: move or cancel each one."),
    ),
}

# Which form field a refusal of the booking domain belongs next to (key: its message).
FIELD_OF = {
    N_("A helpdesk needs a name and an address."): "name",
    N_("Another helpdesk already has this name."): "name",
    N_("The weekday is 0 (Monday) to 6 (Sunday)."): "weekday",
    N_("The closing time must be after the opening time."): "closes_at",
    N_("A slot lasts between 5 and 480 minutes."): "slot_minutes",
    N_("The opening hours are shorter than one slot."): "slot_minutes",
    N_("A slot has between 1 and 100 places."): "places",
    N_("The end of validity must not be before its start."): "valid_until",
    N_("These hours overlap other opening hours of the same helpdesk."): "opens_at",
    N_("Give both the start and the end of the closure, or neither."): "ends_at",
    N_("The end of the closure must be after its start."): "ends_at",
    N_("The last day can't be before these hours start: delete them instead."): "last_day",
    N_("These hours already end before that day."): "last_day",
}
REQUIRED = N_("This field is required.")
BAD_TIME = N_("Write a time like 09:30.")
BAD_NUMBER = N_("Write a whole number.")
BAD_WEEKDAY = N_("Choose a day of the week.")
ITALIAN_DIRECTIONS_NEEDED = N_(
    "Write the directions in Italian too: citizens whose language has none get the Italian ones."
)
HOW_TO_GET_THERE = N_("How to get there, floor, door, what to ask for at the entrance.")
OPTIONAL_DIRECTIONS = N_(
    "Optional: if left empty, citizens reading {language} get the directions in {fallback}, "
    "with a note saying so."
)


class Fields:
    """Parse a form's raw strings, collecting one message per bad field (in `t`'s language).

    A bad or missing required value comes back as a placeholder (midnight, 0, `date.min`):
    callers use the parsed values only when `errors` is empty. Values past the services'
    limits are theirs to refuse (`refused`), so the form comes back with all it holds.
    """

    def __init__(self, values: dict[str, str], t: Translator, prefix: str = "") -> None:
        self.values = values
        self.t = t
        self.prefix = prefix
        self.errors: dict[str, str] = {}

    def _fail(self, name: str, message: str, **params: object) -> None:
        self.errors[name] = self.t(message, **params)

    def _raw(self, name: str, required: bool) -> str:
        value = self.values.get(name, "").strip()
        if required and not value:
            self._fail(name, REQUIRED)
        return value

    def text(self, name: str, *, required: bool = False) -> str:
        return self._raw(name, required)

    def clock(self, name: str) -> time:
        return self.optional_time(name, required=True) or time.min

    def optional_time(self, name: str, *, required: bool = False) -> time | None:
        value = self._raw(name, required)
        try:
            return time.fromisoformat(value) if value else None
        except ValueError:
            self._fail(name, BAD_TIME)
            return None

    def day(self, name: str) -> date:
        return self.optional_day(name, required=True) or date.min

    def optional_day(self, name: str, *, required: bool = False) -> date | None:
        try:
            return read_day(self._raw(name, required))
        except BadDay as exc:
            self._fail(name, exc.message, **DAY_RANGE)
            return None

    def number(self, name: str, *, message: str = BAD_NUMBER) -> int:
        value = self._raw(name, True)
        try:
            # However many digits: the range is the service's to check, next to the field.
            return int(value) if value else 0
        except ValueError:
            self._fail(name, message)
            return 0

    def refused(self, exc: BookingError) -> None:
        """Put the domain's message next to the field it is about (or above the form)."""
        if isinstance(exc, hours.DirectionsTooLong):
            self._fail(directions_field(exc.language), TOO_LONG, max_length=exc.max_length)
            return
        if isinstance(exc, hours.ItalianDirectionsMissing):
            self._fail(directions_field(exc.language), ITALIAN_DIRECTIONS_NEEDED)
            return
        if isinstance(exc, TextTooLong):
            self._fail(self.prefix + exc.field, TOO_LONG, max_length=exc.max_length)
            return
        message = str(exc)
        field = FIELD_OF.get(message)
        self._fail(self.prefix + field if field else "form", message)


def directions_field(language: str) -> str:
    """The form field of the directions in `language`: `directions_it`, `directions_en`."""
    return f"directions_{language}"


def _directions_typed(submitted: FormData) -> dict[str, str]:
    """The directions as typed in the form, by language (the program's languages only)."""
    typed = {}
    for language in available_languages():
        value = submitted.get(directions_field(language))
        typed[language] = value if isinstance(value, str) else ""
    return typed


def _directions_values(directions: dict[str, str]) -> dict[str, str]:
    return {directions_field(language): text for language, text in directions.items()}


@dataclass(frozen=True)
class DirectionsField:
    """One language's directions box on a helpdesk form."""

    name: str
    label: str
    help: str


def _language_names(viewer: Viewer) -> dict[str, str]:
    """The program's languages named in the viewer's language (italiano, English)."""
    names = Locale.parse(Translator(viewer.language).language).languages
    return {language: names.get(language, language) for language in available_languages()}


def _capitalised(name: str) -> str:
    return name[:1].upper() + name[1:]


def _directions_fields(viewer: Viewer) -> list[DirectionsField]:
    """A box per language, Italian first: it is what the other languages fall back to."""
    t = Translator(viewer.language)
    names = _language_names(viewer)
    fields = []
    for language, name in names.items():
        if language == DEFAULT_LANGUAGE:
            help_text = t(HOW_TO_GET_THERE)
        else:
            help_text = t(OPTIONAL_DIRECTIONS, language=name, fallback=names[DEFAULT_LANGUAGE])
        fields.append(DirectionsField(directions_field(language), _capitalised(name), help_text))
    return fields


def _weekdays(viewer: Viewer) -> list[tuple[int, str]]:
    names = get_day_names("wide", locale=Translator(viewer.language).language)
    return [(n, str(names[n]).capitalize()) for n in range(7)]


async def _helpdesk(session: Session, helpdesk_id: int) -> Helpdesk:
    try:
        return await hours.get_helpdesk(session=session, helpdesk_id=helpdesk_id)
    except HelpdeskNotFound:
        raise HTTPException(status_code=404) from None


def _page(
    request: Request,
    viewer: Viewer,
    template: str,
    context: dict[str, Any],
    *,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    return render_form_page(
        request,
        template,
        {
            "date_label": date_labeler(viewer),
            "short_date": date_labeler(viewer, "medium"),
            "today": local_today(request),
            "weekdays": _weekdays(viewer),
            "directions_fields": _directions_fields(viewer),
            "language_names": {
                language: _capitalised(name) for language, name in _language_names(viewer).items()
            },
            "states": STATE_LABELS,
            **context,
        },
        notice=NOTICES.get(notice) or notice_of(notice),
        status=status,
    )


def _hub(helpdesk_id: int, part: str = "") -> str:
    return f"/schedules/helpdesks/{helpdesk_id}{part}"


# --- helpdesks -----------------------------------------------------------------------


async def _index(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    helpdesks = await hours.list_helpdesks(session=session, active_only=False)
    return _page(
        request,
        viewer,
        "schedules/index.html",
        {"helpdesks": helpdesks, "values": values or {}, "errors": errors or {}},
        status=status,
    )


@router.get("/schedules")
async def schedules_home(request: Request, session: Session, viewer: Coordinator) -> HTMLResponse:
    return await _index(request, session, viewer)


@router.post("/schedules/helpdesks")
async def create_helpdesk(
    request: Request,
    session: Session,
    viewer: Coordinator,
    name: FormText = "",
    address: FormText = "",
) -> Response:
    directions = _directions_typed(await storable_form(request))
    form = Fields(
        {"name": name, "address": address, **_directions_values(directions)},
        Translator(viewer.language),
    )
    clean_name = form.text("name", required=True)
    clean_address = form.text("address", required=True)
    if not form.errors:
        try:
            await hours.ensure_helpdesk_name_free(session=session, name=clean_name)
            helpdesk = await hours.create_helpdesk(
                session=session,
                name=clean_name,
                address=clean_address,
                directions=directions,
                actor=viewer.actor,
            )
        except BookingError as exc:
            form.refused(exc)
        else:
            return redirect_with_notice(_hub(helpdesk.id), "helpdesk_created")
    return await _index(
        request, session, viewer, values=form.values, errors=form.errors, status=400
    )


def _helpdesk_page(
    request: Request,
    viewer: Viewer,
    helpdesk: Helpdesk,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    shown = values or {
        "name": helpdesk.name,
        "address": helpdesk.address,
        "moderated": "1" if helpdesk.moderated else "",
        **_directions_values(helpdesk.directions_by_language),
    }
    # What a citizen reading each language is given, the Italian fallback's note included.
    readings: list[tuple[str, Directions | None]] = [
        (_capitalised(name), helpdesk.directions_in(language))
        for language, name in _language_names(viewer).items()
    ]
    return _page(
        request,
        viewer,
        "schedules/helpdesk.html",
        {
            "helpdesk": helpdesk,
            "tab": "details",
            "values": shown,
            "errors": errors or {},
            "readings": readings,
            "working_days": settings_of(request).moderation_expiry_working_days,
        },
        notice=notice,
        status=status,
    )


@router.get("/schedules/helpdesks/{helpdesk_id}")
async def helpdesk_page(
    request: Request,
    session: Session,
    viewer: Coordinator,
    helpdesk_id: RecordId,
    notice: QueryWord = "",
) -> HTMLResponse:
    helpdesk = await _helpdesk(session, helpdesk_id)
    return _helpdesk_page(request, viewer, helpdesk, notice=notice)


@router.post("/schedules/helpdesks/{helpdesk_id}")
async def update_helpdesk(
    request: Request,
    session: Session,
    viewer: Coordinator,
    helpdesk_id: RecordId,
    name: FormText = "",
    address: FormText = "",
    # The checkbox: "1" when ticked, absent when not.
    moderated: FormText = "",
) -> Response:
    helpdesk = await _helpdesk(session, helpdesk_id)
    directions = _directions_typed(await storable_form(request))
    ticked = "1" if moderated == "1" else ""
    form = Fields(
        {"name": name, "address": address, "moderated": ticked, **_directions_values(directions)},
        Translator(viewer.language),
    )
    form.text("name", required=True)
    form.text("address", required=True)
    if not form.errors:
        try:
            await hours.update_helpdesk(
                session=session,
                helpdesk_id=helpdesk_id,
                name=name,
                address=address,
                directions=directions,
                actor=viewer.actor,
            )
            await moderation.set_moderated(
                session=session, helpdesk_id=helpdesk_id, moderated=bool(ticked), actor=viewer.actor
            )
        except BookingError as exc:
            form.refused(exc)
        else:
            return redirect_with_notice(_hub(helpdesk_id), "helpdesk_saved")
    return _helpdesk_page(
        request, viewer, helpdesk, values=form.values, errors=form.errors, status=400
    )


@router.post("/schedules/helpdesks/{helpdesk_id}/active")
async def set_active(
    session: Session, viewer: Coordinator, helpdesk_id: RecordId, active: FormText = ""
) -> Response:
    if active not in ("0", "1"):
        raise HTTPException(status_code=400)
    await _helpdesk(session, helpdesk_id)
    await hours.set_helpdesk_active(
        session=session, helpdesk_id=helpdesk_id, active=active == "1", actor=viewer.actor
    )
    return redirect_with_notice(_hub(helpdesk_id), "activated" if active == "1" else "deactivated")


# --- weekly hours --------------------------------------------------------------------


async def _hours_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    helpdesk: Helpdesk,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    rules = await hours.list_opening_rules(session=session, helpdesk_id=helpdesk.id)
    defaults = {
        "slot_minutes": "30",
        "places": "1",
        "valid_from": local_today(request).isoformat(),
    }
    return _page(
        request,
        viewer,
        "schedules/hours.html",
        {
            "helpdesk": helpdesk,
            "tab": "hours",
            "rules": rules,
            "values": defaults | (values or {}),
            "errors": errors or {},
        },
        notice=notice,
        status=status,
    )


@router.get("/schedules/helpdesks/{helpdesk_id}/hours")
async def hours_page(
    request: Request,
    session: Session,
    viewer: Coordinator,
    helpdesk_id: RecordId,
    notice: QueryWord = "",
) -> HTMLResponse:
    helpdesk = await _helpdesk(session, helpdesk_id)
    return await _hours_page(request, session, viewer, helpdesk, notice=notice)


@router.post("/schedules/helpdesks/{helpdesk_id}/hours")
async def add_hours(
    request: Request,
    session: Session,
    viewer: Coordinator,
    helpdesk_id: RecordId,
    weekday: FormText = "",
    opens_at: FormText = "",
    closes_at: FormText = "",
    slot_minutes: FormText = "",
    places: FormText = "",
    valid_from: FormText = "",
    valid_until: FormText = "",
) -> Response:
    helpdesk = await _helpdesk(session, helpdesk_id)
    form = Fields(
        {
            "weekday": weekday, "opens_at": opens_at, "closes_at": closes_at,
            "slot_minutes": slot_minutes, "places": places, "valid_from": valid_from,
            "valid_until": valid_until,
        },
        Translator(viewer.language),
    )  # fmt: skip
    day_of_week = form.number("weekday", message=BAD_WEEKDAY)
    opens, closes = form.clock("opens_at"), form.clock("closes_at")
    minutes, seats = form.number("slot_minutes"), form.number("places")
    first, last = form.day("valid_from"), form.optional_day("valid_until")
    if not form.errors:
        try:
            await hours.add_opening_rule(
                session=session, helpdesk_id=helpdesk_id, weekday=day_of_week,
                opens_at=opens, closes_at=closes, slot_minutes=minutes, places=seats,
                valid_from=first, valid_until=last, actor=viewer.actor,
            )  # fmt: skip
        except BookingError as exc:
            form.refused(exc)
        else:
            return redirect_with_notice(_hub(helpdesk_id, "/hours"), "rule_added")
    return await _hours_page(
        request, session, viewer, helpdesk, values=form.values, errors=form.errors, status=400
    )


async def _after_removal(
    request: Request, session: Session, helpdesk_id: int, page: str, notice: str
) -> RedirectResponse:
    """Back to `page`, or to the bookings left outside the hours if there are any."""
    stranded = await hours.stranded_bookings(
        session=session, settings=settings_of(request), helpdesk_id=helpdesk_id
    )
    if stranded:
        return redirect_with_notice(_hub(helpdesk_id, "/stranded"), "stranded")
    return redirect_with_notice(page, notice)


@router.post("/schedules/rules/{rule_id}/end")
async def end_hours(
    request: Request,
    session: Session,
    viewer: Coordinator,
    rule_id: RecordId,
    last_day: FormText = "",
) -> Response:
    try:
        rule = await hours.get_opening_rule(session=session, rule_id=rule_id)
    except ScheduleItemNotFound:
        raise HTTPException(status_code=404) from None
    helpdesk_id = rule.helpdesk_id
    form = Fields({"last_day": last_day}, Translator(viewer.language))
    day = form.day("last_day")
    if not form.errors:
        try:
            await hours.end_opening_rule(
                session=session, rule_id=rule_id, last_day=day, actor=viewer.actor
            )
        except BookingError as exc:
            form.refused(exc)
    if form.errors:
        # The refused date stays next to its own rule's form.
        key = f"end-{rule_id}"
        return await _hours_page(
            request,
            session,
            viewer,
            await _helpdesk(session, helpdesk_id),
            values={key: last_day},
            errors={key: next(iter(form.errors.values()))},
            status=400,
        )
    return await _after_removal(
        request, session, helpdesk_id, _hub(helpdesk_id, "/hours"), "rule_ended"
    )


@router.post("/schedules/rules/{rule_id}/delete")
async def delete_hours(
    request: Request, session: Session, viewer: Coordinator, rule_id: RecordId
) -> Response:
    try:
        helpdesk_id = await hours.delete_opening_rule(
            session=session, rule_id=rule_id, actor=viewer.actor
        )
    except ScheduleItemNotFound:
        raise HTTPException(status_code=404) from None
    return await _after_removal(
        request, session, helpdesk_id, _hub(helpdesk_id, "/hours"), "rule_deleted"
    )


# --- closures and extra openings -----------------------------------------------------


async def _closures_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    helpdesk: Helpdesk,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    today = local_today(request)
    closures = await hours.list_closures(session=session, helpdesk_id=helpdesk.id, since=today)
    extra = await hours.list_extra_openings(session=session, helpdesk_id=helpdesk.id, since=today)
    defaults = {"extra_slot_minutes": "30", "extra_places": "1"}
    return _page(
        request,
        viewer,
        "schedules/closures.html",
        {
            "helpdesk": helpdesk,
            "tab": "closures",
            "closures": closures,
            "extra": extra,
            "values": defaults | (values or {}),
            "errors": errors or {},
        },
        notice=notice,
        status=status,
    )


@router.get("/schedules/helpdesks/{helpdesk_id}/closures")
async def closures_page(
    request: Request,
    session: Session,
    viewer: Coordinator,
    helpdesk_id: RecordId,
    notice: QueryWord = "",
) -> HTMLResponse:
    helpdesk = await _helpdesk(session, helpdesk_id)
    return await _closures_page(request, session, viewer, helpdesk, notice=notice)


@router.post("/schedules/helpdesks/{helpdesk_id}/closures")
async def add_closure(
    request: Request,
    session: Session,
    viewer: Coordinator,
    helpdesk_id: RecordId,
    closure_day: FormText = "",
    closure_starts_at: FormText = "",
    closure_ends_at: FormText = "",
    closure_reason: FormText = "",
) -> Response:
    helpdesk = await _helpdesk(session, helpdesk_id)
    form = Fields(
        {
            "closure_day": closure_day, "closure_starts_at": closure_starts_at,
            "closure_ends_at": closure_ends_at, "closure_reason": closure_reason,
        },
        Translator(viewer.language),
        prefix="closure_",
    )  # fmt: skip
    day = form.day("closure_day")
    starts = form.optional_time("closure_starts_at")
    ends = form.optional_time("closure_ends_at")
    if not form.errors:
        try:
            closure, affected = await hours.add_closure(
                session=session, settings=settings_of(request), helpdesk_id=helpdesk_id,
                day=day, starts_at=starts, ends_at=ends, reason=closure_reason,
                actor=viewer.actor,
            )  # fmt: skip
        except BookingError as exc:
            form.refused(exc)
        else:
            if affected:
                return redirect_with_notice(f"/schedules/closures/{closure.id}", "closure_affects")
            return redirect_with_notice(_hub(helpdesk_id, "/closures"), "closure_added")
    return await _closures_page(
        request, session, viewer, helpdesk, values=form.values, errors=form.errors, status=400
    )


@router.post("/schedules/helpdesks/{helpdesk_id}/extra-openings")
async def add_extra_opening(
    request: Request,
    session: Session,
    viewer: Coordinator,
    helpdesk_id: RecordId,
    extra_day: FormText = "",
    extra_opens_at: FormText = "",
    extra_closes_at: FormText = "",
    extra_slot_minutes: FormText = "",
    extra_places: FormText = "",
    extra_note: FormText = "",
) -> Response:
    helpdesk = await _helpdesk(session, helpdesk_id)
    form = Fields(
        {
            "extra_day": extra_day, "extra_opens_at": extra_opens_at,
            "extra_closes_at": extra_closes_at, "extra_slot_minutes": extra_slot_minutes,
            "extra_places": extra_places, "extra_note": extra_note,
        },
        Translator(viewer.language),
        prefix="extra_",
    )  # fmt: skip
    day = form.day("extra_day")
    opens, closes = form.clock("extra_opens_at"), form.clock("extra_closes_at")
    minutes, seats = form.number("extra_slot_minutes"), form.number("extra_places")
    if not form.errors:
        try:
            await hours.add_extra_opening(
                session=session, helpdesk_id=helpdesk_id, day=day, opens_at=opens,
                closes_at=closes, slot_minutes=minutes, places=seats, note=extra_note,
                actor=viewer.actor,
            )  # fmt: skip
        except BookingError as exc:
            form.refused(exc)
        else:
            return redirect_with_notice(_hub(helpdesk_id, "/closures"), "extra_added")
    return await _closures_page(
        request, session, viewer, helpdesk, values=form.values, errors=form.errors, status=400
    )


@router.post("/schedules/closures/{closure_id}/delete")
async def delete_closure(session: Session, viewer: Coordinator, closure_id: RecordId) -> Response:
    try:
        helpdesk_id = await hours.delete_closure(
            session=session, closure_id=closure_id, actor=viewer.actor
        )
    except ScheduleItemNotFound:
        raise HTTPException(status_code=404) from None
    return redirect_with_notice(_hub(helpdesk_id, "/closures"), "closure_deleted")


@router.post("/schedules/extra-openings/{opening_id}/delete")
async def delete_extra_opening(
    request: Request, session: Session, viewer: Coordinator, opening_id: RecordId
) -> Response:
    try:
        helpdesk_id = await hours.delete_extra_opening(
            session=session, opening_id=opening_id, actor=viewer.actor
        )
    except ScheduleItemNotFound:
        raise HTTPException(status_code=404) from None
    return await _after_removal(
        request, session, helpdesk_id, _hub(helpdesk_id, "/closures"), "extra_deleted"
    )


# --- bookings to move or cancel ------------------------------------------------------


def _affected_page(
    request: Request,
    viewer: Viewer,
    helpdesk: Helpdesk,
    entries: list[AgendaEntry],
    *,
    here: str,
    context: dict[str, Any],
    notice: str,
) -> HTMLResponse:
    return _page(
        request,
        viewer,
        "schedules/affected.html",
        {"helpdesk": helpdesk, "entries": entries, "here": here, **context},
        notice=notice,
    )


@router.get("/schedules/closures/{closure_id}")
async def closure_page(
    request: Request,
    session: Session,
    viewer: Coordinator,
    closure_id: RecordId,
    notice: QueryWord = "",
) -> HTMLResponse:
    try:
        closure, entries = await hours.closure_bookings(
            session=session, settings=settings_of(request), closure_id=closure_id
        )
    except ScheduleItemNotFound:
        raise HTTPException(status_code=404) from None
    helpdesk = await _helpdesk(session, closure.helpdesk_id)
    here = f"/schedules/closures/{closure_id}"
    context = {"tab": "closures", "closure": closure, "reason": closure.reason}
    return _affected_page(
        request, viewer, helpdesk, entries, here=here, context=context, notice=notice
    )


@router.get("/schedules/helpdesks/{helpdesk_id}/stranded")
async def stranded_page(
    request: Request,
    session: Session,
    viewer: Coordinator,
    helpdesk_id: RecordId,
    notice: QueryWord = "",
) -> HTMLResponse:
    helpdesk = await _helpdesk(session, helpdesk_id)
    entries = await hours.stranded_bookings(
        session=session, settings=settings_of(request), helpdesk_id=helpdesk_id
    )
    context = {"tab": "stranded", "closure": None, "reason": ""}
    return _affected_page(
        request, viewer, helpdesk, entries, here=_hub(helpdesk_id, "/stranded"),
        context=context, notice=notice,
    )  # fmt: skip
