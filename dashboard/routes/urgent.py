"""Urgent first: a coordinator offers an urgent citizen an earlier place (SPEC section 4).

`GET /bookings/{id}/earlier` lists the free places earlier than that booking, at any
helpdesk, and the offer the citizen has open, with its expiry. `POST` holds the chosen
place (`shared.booking.offers.offer_earlier_place`): the citizen accepts or declines it
on Telegram with one tap, within the waitlist's hold time. Coordinators only; bookings of
urgent citizens only (others get a clear message, nothing changed). Plain forms and a 303
redirect after the offer: no JavaScript needed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard.deps import COORDINATION, Session, Viewer, all_or_nothing, allow, settings_of
from dashboard.pages import with_notice
from dashboard.params import FormText, QueryWord, RecordId
from dashboard.slot_picker import BOOKING_REFUSED, SLOT_ERRORS, parse_slot
from dashboard.templating import render
from shared.booking import hours, offers
from shared.booking.errors import BookingError, BookingNotFound, IllegalTransition
from shared.db import utcnow
from shared.i18n import N_

router = APIRouter()
Coordinator = Annotated[Viewer, Depends(allow(*COORDINATION))]

# Why an offer can't be made, by the refusal's code; the slot picker's for the place.
PROBLEMS = {
    **SLOT_ERRORS,
    offers.OfferOpen.code: N_(
        "The citizen already has an offer open: wait for their answer or for it to lapse."
    ),
    offers.NotUrgent.code: N_(
        "Earlier places are offered to urgent cases only, and this citizen is not marked urgent."
    ),
    IllegalTransition.code: N_("This booking is no longer active: there is nothing to move."),
    "slot_not_offered": N_("Choose one of the earlier free places below."),
    "no_slot": N_("Choose one of the earlier free places below."),
    "not_allowed_to_book": N_("This citizen may not book at the moment."),
}
NOTICES = {
    "offered": (
        "success",
        N_(
            "Place offered and held. The citizen is asked on Telegram to accept or decline "
            "it with one tap."
        ),
    ),
    "offered_call": (
        "warning",
        N_(
            "Place held, but this citizen has no Telegram chat: phone them, and move the "
            "booking yourself if they want it."
        ),
    ),
}


def _earlier(booking_id: int) -> str:
    return f"/bookings/{booking_id}/earlier"


async def _page(
    request: Request,
    session: Session,
    booking_id: int,
    *,
    chosen: str = "",
    problem: str = "",
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    settings = settings_of(request)
    helpdesks = {h.id: h for h in await hours.list_helpdesks(session=session, active_only=False)}
    try:
        found = await offers.earlier_places(
            session=session, settings=settings, booking_id=booking_id, now=utcnow()
        )
    except BookingNotFound:
        raise HTTPException(status_code=404) from None
    except (offers.NotUrgent, IllegalTransition) as exc:
        # Shown, not offered: what the booking is, and why nothing can be offered.
        booking, citizen = await offers.refused_booking(session=session, booking_id=booking_id)
        return render(
            request,
            "bookings/earlier.html",
            {
                "booking": booking,
                "citizen": citizen,
                "helpdesks": helpdesks,
                "refused": PROBLEMS[exc.code],
            },
            status_code=409 if status == 200 else status,
        )
    return render(
        request,
        "bookings/earlier.html",
        {
            "booking": found.booking,
            "citizen": found.citizen,
            "helpdesks": helpdesks,
            "places": found.places,
            "offer": found.offer,
            "chosen": chosen,
            "problem": PROBLEMS.get(problem, BOOKING_REFUSED) if problem else "",
            "notice": NOTICES.get(notice),
            "refused": "",
            "hold_minutes": settings.waitlist_hold_minutes,
        },
        status_code=status,
    )


@router.get("/bookings/{booking_id}/earlier")
async def earlier_form(
    request: Request,
    session: Session,
    viewer: Coordinator,
    booking_id: RecordId,
    notice: QueryWord = "",
) -> HTMLResponse:
    return await _page(request, session, booking_id, notice=notice)


@router.post("/bookings/{booking_id}/earlier")
async def offer_earlier(
    request: Request,
    session: Session,
    viewer: Coordinator,
    booking_id: RecordId,
    slot: FormText = "",
) -> Response:
    chosen = parse_slot(slot)
    if chosen is None:
        return await _page(request, session, booking_id, chosen=slot, problem="no_slot", status=400)
    helpdesk_id, starts_at = chosen
    try:
        async with all_or_nothing(session):
            await offers.offer_earlier_place(
                session=session,
                settings=settings_of(request),
                booking_id=booking_id,
                helpdesk_id=helpdesk_id,
                starts_at=starts_at,
                actor=viewer.actor,
                now=utcnow(),
            )
    except BookingNotFound:
        raise HTTPException(status_code=404) from None
    except BookingError as exc:
        session.expire_all()
        return await _page(request, session, booking_id, chosen=slot, problem=exc.code, status=409)
    found = await offers.refused_booking(session=session, booking_id=booking_id)
    key = "offered" if found[1].telegram_chat_id is not None else "offered_call"
    return RedirectResponse(with_notice(_earlier(booking_id), key), status_code=303)
