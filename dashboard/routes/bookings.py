"""The coordinators' bookings board: every booking across helpdesks, filtered and counted,
its bulk actions (move, cancel with a message) and its CSV download (SPEC J6).

The filters are a GET form, so a board is a bookmarkable address. The bulk form posts the
selected rows; its result (who was moved or cancelled, who was not and why, whom to phone)
is the answer to the POST itself rather than a page after a redirect: it lists names and
phone numbers, which must not travel in an address. Sending it again changes nothing: the
bookings it moved or cancelled are no longer active, and each is refused on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from dashboard.deps import (
    COORDINATION,
    Session,
    Viewer,
    all_or_nothing,
    allow,
    settings_of,
    writes_on_read,
)
from dashboard.params import BadDay, QueryText, QueryWord, read_day, read_id, storable_form
from dashboard.redirects import local_path
from dashboard.templating import format_moment, format_phone, render
from shared.audit import service as audit
from shared.booking import board, bulk, hours
from shared.booking.board import BoardFilters, BoardPage, BoardRow
from shared.booking.models import BookingState, Helpdesk
from shared.cases import labels
from shared.cases.errors import InvalidCursor, InvalidInput
from shared.db import utcnow
from shared.exports import writers
from shared.i18n import N_, Translator
from shared.intake import questionnaire
from shared.limits import DAY_RANGE

router = APIRouter()
Coordinator = Annotated[Viewer, Depends(allow(*COORDINATION))]
FromDay = Annotated[QueryText, Query(alias="from")]

BOARD = "/bookings"
ACTIONS = ("move", "cancel")
CSV_HEADERS = (
    N_("Appointment"), N_("Helpdesk"), N_("Booking code"), N_("Citizen"), N_("Phone"),
    N_("Channel"), N_("State"), N_("Request"), N_("Urgent"), N_("Household"), N_("Needs"),
    N_("Eligibility"), N_("No-shows"), N_("Booked on"),
)  # fmt: skip


def _today(request: Request) -> date:
    return utcnow().astimezone(settings_of(request).tz).date()


def _raw(request: Request, values: Mapping[str, str]) -> dict[str, str | None]:
    """The filters as sent; `from` None when the address has none (the board's default)."""
    raw: dict[str, str | None] = dict(values)
    if "from" not in request.query_params:
        raw["from"] = None
    return raw


def _options(t: Translator, helpdesks: list[Helpdesk]) -> dict[str, list[tuple[str, str]]]:
    return {
        "state": [("", t("Any state"))]
        + [(s.value, t(labels.BOOKING_STATES[s.value])) for s in BookingState],
        "helpdesk": [("", t("Any helpdesk"))] + [(str(h.id), h.name) for h in helpdesks],
        "urgent": [("", t("Urgent or not")), ("yes", t("Urgent only")), ("no", t("Not urgent"))],
        "eligibility": [("", t("Any outcome"))]
        + [(e.value, t(label)) for e, label in board.ELIGIBILITY.items()],
        "channel": [("", t("Any channel"))]
        + [(c, t(label)) for c, label in board.CHANNELS.items()],
        "moderation": [("", t("Any"))] + [(m, t(label)) for m, label in board.MODERATION.items()],
        "no_shows": [("", t("Any citizen")), ("repeated", t("Two no-shows or more"))],
        "sort": [(s.value, t(label)) for s, label in board.SORTS.items()],
    }


def _link(filters: BoardFilters, **changes: str) -> str:
    return f"{BOARD}?{urlencode({**board.query_of(filters), **changes})}"


class RowView:
    """A board row with its texts in the viewer's language (for the page and the CSV)."""

    def __init__(self, row: BoardRow, t: Translator, helpdesks: Mapping[int, str]) -> None:
        self.row = row
        self.helpdesk = helpdesks.get(row.helpdesk_id, "—")
        self.state = t(labels.BOOKING_STATES.get(row.state, row.state))
        self.moderation = (
            t(board.MODERATION[row.moderation]) if row.moderation in board.MODERATION else ""
        )
        self.channel = t(board.CHANNELS.get(row.channel, row.channel))
        self.household = (
            questionnaire.labels("household", row.household, t) if row.household else "—"
        )
        self.needs = questionnaire.labels("needs", row.needs, t) if row.needs else "—"
        if row.eligible is None:
            self.eligibility = "—"
        else:
            self.eligibility = t(board.ELIGIBILITY[
                board.Eligibility.ELIGIBLE if row.eligible else board.Eligibility.NOT_ELIGIBLE
            ])  # fmt: skip
            if row.overridden:
                self.eligibility += " " + t("(decided by a coordinator)")


async def _helpdesks(session: Session) -> list[Helpdesk]:
    return await hours.list_helpdesks(session=session, active_only=False)


async def _board(
    request: Request,
    session: Session,
    viewer: Viewer,
    raw: dict[str, str | None],
    *,
    after: str = "",
    before: str = "",
    bulk_form: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    t = Translator(viewer.language)
    settings = settings_of(request)
    errors: dict[str, str] = {}
    filters = BoardFilters(day_from=_today(request))
    page = BoardPage([], [], None, None)
    try:
        filters = board.parse_filters(raw, today=_today(request))
        page = await board.list_bookings(
            session=session, settings=settings, filters=filters,
            after=after or None, before=before or None,
        )  # fmt: skip
    except InvalidInput as exc:
        errors = {
            name: t(message, **exc.params.get(name, {})) for name, message in exc.errors.items()
        }
        status = 400
    except InvalidCursor:
        raise HTTPException(status_code=400) from None
    helpdesks = await _helpdesks(session)
    names = {h.id: h.name for h in helpdesks}
    shown = {key: (value if value is not None else "") for key, value in raw.items()}
    if raw.get("from") is None and not errors:
        shown["from"] = filters.day_from.isoformat() if filters.day_from else ""
    here = _link(filters)
    counts = {c.state: c for c in page.counts}
    tabs = [
        (t("All"), _link(filters, state=""), page.total if page.counts else None,
         filters.state is None)
    ] + [
        (t(labels.BOOKING_STATES[s.value]), _link(filters, state=s.value), counts.get(s.value),
         filters.state is s)
        for s in BookingState
    ]  # fmt: skip
    return render(
        request,
        "bookings/board.html",
        {
            "raw": shown,
            "errors": errors,
            "options": _options(t, helpdesks),
            "move_helpdesks": [("", t("The same helpdesk"))]
            + [(str(h.id), h.name) for h in helpdesks if h.active],
            "tabs": tabs,
            "rows": [RowView(r, t, names) for r in page.rows],
            "next_link": _link(filters, after=page.next_cursor) if page.next_cursor else None,
            "previous_link": (
                _link(filters, before=page.previous_cursor) if page.previous_cursor else None
            ),
            "csv_link": f"{BOARD}.csv?{urlencode(board.query_of(filters))}",
            "here": here,
            "bulk": bulk_form or {"values": {}, "errors": {}, "selected": set()},
            "actions": ACTIONS,
        },
        status_code=status,
    )


@router.get("/bookings")
async def board_page(
    request: Request,
    session: Session,
    viewer: Coordinator,
    # The filter form's fields: `board.parse_filters` checks them, next to each field.
    state: QueryText = "",
    from_: FromDay = "",
    to: QueryText = "",
    helpdesk: QueryText = "",
    urgent: QueryText = "",
    eligibility: QueryText = "",
    channel: QueryText = "",
    moderation: QueryText = "",
    no_shows: QueryText = "",
    sort: QueryText = "",
    after: QueryWord = "",
    before: QueryWord = "",
) -> HTMLResponse:
    values = {
        "state": state, "from": from_, "to": to, "helpdesk": helpdesk, "urgent": urgent,
        "eligibility": eligibility, "channel": channel, "moderation": moderation,
        "no_shows": no_shows, "sort": sort,
    }  # fmt: skip
    return await _board(request, session, viewer, _raw(request, values), after=after, before=before)


@router.get("/bookings.csv")
@writes_on_read()
async def board_csv(
    request: Request,
    session: Session,
    viewer: Coordinator,
    state: QueryText = "",
    from_: FromDay = "",
    to: QueryText = "",
    helpdesk: QueryText = "",
    urgent: QueryText = "",
    eligibility: QueryText = "",
    channel: QueryText = "",
    moderation: QueryText = "",
    no_shows: QueryText = "",
    sort: QueryText = "",
) -> Response:
    """The filtered board as CSV for a spreadsheet: UTF-8 with a BOM and `;` between
    fields, as Excel in Italian opens it; the header in the viewer's language."""
    values = {
        "state": state, "from": from_, "to": to, "helpdesk": helpdesk, "urgent": urgent,
        "eligibility": eligibility, "channel": channel, "moderation": moderation,
        "no_shows": no_shows, "sort": sort,
    }  # fmt: skip
    raw = _raw(request, values)
    try:
        filters = board.parse_filters(raw, today=_today(request))
    except InvalidInput:
        return await _board(request, session, viewer, raw)
    settings = settings_of(request)
    rows, truncated = await board.export_rows(session=session, settings=settings, filters=filters)
    t = Translator(viewer.language)
    names = {h.id: h.name for h in await _helpdesks(session)}
    yes, no = t("yes"), t("no")
    lines: list[list[object]] = [[t(h) for h in CSV_HEADERS]]
    for row in rows:
        view = RowView(row, t, names)
        lines.append([
            format_moment(row.starts_at, t.language, settings.tz), view.helpdesk, row.code,
            row.name or "", format_phone(row.phone) if row.phone else "", view.channel,
            view.state, view.moderation, yes if row.urgent else no, view.household, view.needs,
            view.eligibility, row.no_shows, format_moment(row.booked_at, t.language, settings.tz),
        ])  # fmt: skip
    await audit.record(
        session=session, actor=viewer.actor, action="booking.export", object_type="booking",
        details={"filters": filters.described(), "rows": len(rows), "truncated": truncated},
    )  # fmt: skip
    filename = f"prenotazioni-{_today(request).isoformat()}.csv"
    return Response(
        writers.csv_text(lines),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _back_filters(back: str) -> tuple[dict[str, str | None], str]:
    """The board's filters from the address the bulk form came from (`back`)."""
    path = local_path(back, BOARD)
    parts = urlsplit(path)
    if parts.path != BOARD:
        path, parts = BOARD, urlsplit(BOARD)
    pairs = dict(parse_qsl(parts.query, keep_blank_values=True))
    raw: dict[str, str | None] = {name: pairs.get(name, "") for name in board.FIELDS}
    if "from" not in pairs:
        raw["from"] = None
    return raw, path


@router.post("/bookings/bulk")
async def bulk_action(request: Request, session: Session, viewer: Coordinator) -> HTMLResponse:
    form = await storable_form(request)
    t = Translator(viewer.language)

    def field(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    chosen = [
        found
        for value in form.getlist("booking")
        if isinstance(value, str) and (found := read_id(value)) is not None
    ]
    action = field("action")
    values = {name: field(name) for name in ("action", "day", "helpdesk", "message")}
    raw, back = _back_filters(field("back"))
    errors: dict[str, str] = {}
    day = helpdesk_id = None
    if action not in ACTIONS:
        errors["action"] = t("Choose what to do with the selected bookings.")
    if action == "move":
        try:
            day = read_day(values["day"])
        except BadDay as exc:
            errors["day"] = t(exc.message, **DAY_RANGE)
        if values["helpdesk"]:
            helpdesk_id = read_id(values["helpdesk"])
            if helpdesk_id is None:
                errors["helpdesk"] = t("Choose one of the helpdesks.")
    result = None
    if not errors:
        try:
            async with all_or_nothing(session):
                if action == "move":
                    result = await bulk.move_bookings(
                        session=session, settings=settings_of(request), booking_ids=chosen,
                        day=day, helpdesk_id=helpdesk_id, actor=viewer.actor, now=utcnow(),
                    )  # fmt: skip
                else:
                    result = await bulk.cancel_bookings(
                        session=session, settings=settings_of(request), booking_ids=chosen,
                        message=values["message"], actor=viewer.actor, now=utcnow(),
                    )  # fmt: skip
        except InvalidInput as exc:
            errors = {
                name: t(message, **exc.params.get(name, {})) for name, message in exc.errors.items()
            }
    if result is None:
        bulk_form = {"values": values, "errors": errors, "selected": set(chosen)}
        return await _board(request, session, viewer, raw, bulk_form=bulk_form, status=400)
    names = {h.id: h.name for h in await _helpdesks(session)}
    return render(
        request,
        "bookings/result.html",
        {
            "action": action,
            "result": result,
            "back": back,
            "helpdesks": names,
            "refusals": bulk.REFUSALS,
            "unreachable": bulk.UNREACHABLE,
            "view": lambda row: RowView(row, t, names),
        },
    )
