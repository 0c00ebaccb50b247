"""The screens of booking on Telegram (J2, J3): choose a helpdesk, a day, a time; confirm;
see, move or cancel the appointment; the waitlist and its offers.

Pure: the handlers in `bot.handlers.booking` read the free places, the booking or the
offer, and these functions turn them into text and buttons. The choices made so far
travel in the buttons' data (see the handlers' docstring); while a booking is being
moved, its id rides along as one extra last argument.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime

from bot import texts
from bot.callbacks import Cb, encode
from bot.screens.card import booking_details, manage_row, place, request_held, what_to_bring
from bot.screens.common import (
    Rows,
    Screen,
    View,
    chunks,
    clock,
    day_label,
    join,
    keyboard,
    long_day,
    when,
)
from bot.screens.offers import soonest_days_screen
from shared.booking import moderation
from shared.booking.availability import FreeSlot
from shared.booking.errors import (
    AlreadyBooked,
    AlreadyWaiting,
    BookingError,
    BookingNotFound,
    CitizenNotFound,
    HelpdeskInactive,
    HelpdeskNotFound,
    IllegalTransition,
    InvalidSchedule,
    NoOffer,
    OfferExpired,
    OverlappingRules,
    SlotInPast,
    SlotNotOffered,
    SlotsAvailable,
    SlotTaken,
    SlotTooFar,
    SlotTooSoon,
)
from shared.booking.models import Booking, Helpdesk, WaitlistState
from shared.booking.service import HeldPlace
from shared.citizens.standing import (
    Booked,
    NotConsented,
    NotEligible,
    Offered,
    QuestionnaireToFinish,
    Standing,
    StandingCode,
    Waiting,
)
from shared.i18n import N_, Translator

DAYS_PER_PAGE = 8
DAYS_PER_ROW = 2
TIMES_PER_ROW = 4

WRITE_START = N_("Write /start to begin.")
SEE_WHERE_YOU_STAND = N_("Write /prenotazione to see where you stand.")


# The standings of a citizen who can't book (yet); `book_slot` and `join_waitlist` refuse
# them with their code (`NotAllowedToBook`).
NotYet = NotConsented | QuestionnaireToFinish | NotEligible

NOT_YET_CODES = frozenset(
    code.value
    for code in (StandingCode.NOT_CONSENTED, StandingCode.QUESTIONNAIRE, StandingCode.NOT_ELIGIBLE)
)

RULED_OUT_BY_COORDINATOR = N_(
    "A case worker has looked at your situation: Ripartire can't book an interview for you. "
    "If you have questions, talk to us:\n{contacts}"
)

# One reply per refusal of the booking services, by `BookingError.code`: a new refusal
# gets its reply here, and its fresh choices, if any, in
# `bot.handlers.booking._after_refused_booking`.
ERROR_TEXTS: dict[str, str] = {
    HelpdeskNotFound.code: N_("That helpdesk is not taking bookings right now."),
    HelpdeskInactive.code: N_("That helpdesk is not taking bookings right now."),
    CitizenNotFound.code: WRITE_START,
    BookingNotFound.code: N_("I can't find that appointment among yours."),
    SlotNotOffered.code: N_("That time is not one of the free times."),
    SlotInPast.code: N_("That time has already passed."),
    SlotTooSoon.code: N_("That time is too close to now to be booked."),
    SlotTooFar.code: N_("That time is too far ahead: you can book up to {days} days ahead."),
    SlotTaken.code: N_("Sorry, that place was just taken by someone else."),
    AlreadyBooked.code: N_("You already have an appointment."),
    IllegalTransition.code: N_(
        "This appointment can't be changed any more: it was cancelled, or it has already started."
    ),
    # Staff-side refusals (opening hours): never expected here, still never a stack trace.
    InvalidSchedule.code: N_("Sorry, that can't be done right now."),
    OverlappingRules.code: N_("Sorry, that can't be done right now."),
    AlreadyWaiting.code: N_(
        "You are already on the waitlist: we'll write to you as soon as a place frees up."
    ),
    SlotsAvailable.code: N_("Good news: there are free places now!"),
    NoOffer.code: N_("This offer is no longer open."),
    OfferExpired.code: N_(
        "Sorry, the time to accept this place has run out: it went to the next person waiting."
    ),
    # The citizen may not book (yet), by their standing's code; a coordinator's ruling
    # is told as such (`not_yet_text`).
    StandingCode.NOT_CONSENTED.value: WRITE_START,
    StandingCode.QUESTIONNAIRE.value: N_(
        "To book an interview, first answer a few questions: write /start."
    ),
    StandingCode.NOT_ELIGIBLE.value: N_(
        "From your answers, Ripartire can't book an interview for you. "
        "If you think this is a mistake, talk to us:\n{contacts}"
    ),
    BookingError.code: N_("Sorry, that can't be done right now."),
}


def refusal(view: View, code: str) -> str:
    """The reply for a refusal `code` (a `BookingError.code`), in the citizen's language."""
    message = ERROR_TEXTS.get(code, ERROR_TEXTS[BookingError.code])
    return view.t(message, days=view.horizon_days, contacts=texts.contacts(view.t))


def not_yet_text(view: View, standing: NotYet) -> str:
    """Why the citizen can't book (yet): their standing, kindly, with the contacts."""
    if isinstance(standing, NotEligible) and standing.by_coordinator:
        return view.t(RULED_OUT_BY_COORDINATOR, contacts=texts.contacts(view.t))
    return refusal(view, standing.code.value)


# --- what the steps carry ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Moving:
    """The booking being moved: plain values, safe after any savepoint rollback."""

    id: int
    helpdesk_id: int
    starts_at: datetime

    @classmethod
    def of(cls, booking: Booking) -> Moving:
        return cls(booking.id, booking.helpdesk_id, booking.starts_at)


@dataclass(frozen=True, slots=True)
class Places:
    """The free slots now, of every helpdesk, and the active helpdesks that have some.

    Read once per update and handed from screen to screen: the start screen, the days of
    a helpdesk and its "another helpdesk" button all show the same availability.
    """

    slots: list[FreeSlot]
    helpdesks: list[Helpdesk]
    # An urgent citizen: the soonest days at any helpdesk come first.
    urgent: bool = False

    def of(self, helpdesk: Helpdesk) -> list[FreeSlot]:
        return [s for s in self.slots if s.helpdesk_id == helpdesk.id]


def _extra(moving: Moving | None) -> tuple[int, ...]:
    """The trailing callback argument that keeps a move going through the steps."""
    return () if moving is None else (moving.id,)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def book_button(t: Translator) -> Rows:
    return [[(t("📅 Book an interview"), encode(Cb.HELPDESKS))]]


# --- the steps of the flow ---------------------------------------------------------------


def start_screen(view: View, places: Places, moving: Moving | None, note: str = "") -> Screen:
    """The first step: the helpdesks with free places (skipped when only one has some)."""
    t = view.t
    helpdesks = places.helpdesks
    if not helpdesks:
        return nothing_free_screen(view, moving, note)
    if len(helpdesks) == 1:
        return days_screen(view, places, helpdesks[0], 0, moving, note)
    if places.urgent:
        return soonest_days_screen(view, places.slots, helpdesks, _extra(moving), note)
    lines = [t("Where would you like to have your interview?")]
    lines.extend(place(helpdesk, t) for helpdesk in helpdesks)
    rows = [[(f"📍 {h.name}", encode(Cb.HELPDESK, h.id, *_extra(moving)))] for h in helpdesks]
    return join(note, "\n\n".join(lines)), keyboard(rows)


def nothing_free_screen(view: View, moving: Moving | None, note: str = "") -> Screen:
    t = view.t
    days = view.horizon_days
    if moving is not None:
        stays = t(
            "There are no other free times in the next {days} days right now. "
            "Your appointment stays as it is.",
            days=days,
        )
        return join(note, stays), None
    return (
        join(
            note,
            t("😔 There are no free places in the next {days} days right now.", days=days),
            t(
                "Do you want to join the waitlist? When a place frees up we'll write to you "
                "here, and we'll hold it for you for {minutes} minutes.",
                minutes=view.hold_minutes,
            ),
            t("You can also call us:\n{contacts}", contacts=texts.contacts(t)),
        ),
        keyboard([[(t("🔔 Yes, put me on the waitlist"), encode(Cb.WAITLIST_JOIN))]]),
    )


def days_screen(
    view: View,
    places: Places,
    helpdesk: Helpdesk,
    page: int,
    moving: Moving | None,
    note: str = "",
) -> Screen:
    """The days with free places at a helpdesk, a page at a time; asked for a page past the
    last, the last one, saying there is nothing bookable further ahead."""
    t = view.t
    extra = _extra(moving)
    days = sorted({view.local(s.starts_at).date() for s in places.of(helpdesk)})
    if not days:
        gone = t("There are no free places left at {name}.", name=html.escape(helpdesk.name))
        return start_screen(view, places, moving, join(note, gone))
    pages = (len(days) + DAYS_PER_PAGE - 1) // DAYS_PER_PAGE
    if page >= pages:
        note = join(note, no_later_days_note(view))
    page = min(max(page, 0), pages - 1)
    shown = days[page * DAYS_PER_PAGE : (page + 1) * DAYS_PER_PAGE]
    rows = chunks(
        [
            (day_label(t, d), encode(Cb.DAY, helpdesk.id, d.strftime("%Y%m%d"), *extra))
            for d in shown
        ],
        DAYS_PER_ROW,
    )
    navigation = []
    if page > 0:
        navigation.append((t("◀ Earlier days"), encode(Cb.DAYS, helpdesk.id, page - 1, *extra)))
    if page < pages - 1:
        navigation.append((t("More days ▶"), encode(Cb.DAYS, helpdesk.id, page + 1, *extra)))
    rows.append(navigation)
    if len(places.helpdesks) > 1:
        rows.append([(t("↩️ Another helpdesk"), encode(Cb.HELPDESKS, *extra))])
    return join(note, place(helpdesk, t), t("Choose a day:")), keyboard(rows)


def beyond_horizon_note(view: View) -> str:
    """A day further ahead than bookings are taken (not a day without places)."""
    return view.t(
        "That day is too far ahead: appointments can be booked up to {days} days ahead. "
        "These are the days you can choose from:",
        days=view.horizon_days,
    )


def no_later_days_note(view: View) -> str:
    """Paging past the last day that can be booked."""
    return view.t(
        "There are no later days to choose from: appointments can be booked up to {days} "
        "days ahead.",
        days=view.horizon_days,
    )


def past_day_note(view: View) -> str:
    return view.t("That day has already passed. These are the days you can choose from:")


def unknown_day_note(view: View) -> str:
    return view.t("That day is not available. Choose another one:")


def full_day_note(view: View, day: date) -> str:
    return view.t("There are no free places left on {day}.", day=long_day(view.t, day))


def times_screen(
    view: View,
    helpdesk: Helpdesk,
    day: date,
    slots: list[FreeSlot],
    moving: Moving | None,
    note: str = "",
) -> Screen:
    """The free times of one day (`slots`, not empty)."""
    t = view.t
    extra = _extra(moving)
    rows = chunks(
        [
            (clock(view, s.starts_at), encode(Cb.TIME, helpdesk.id, _epoch(s.starts_at), *extra))
            for s in slots
        ],
        TIMES_PER_ROW,
    )
    rows.append([(t("↩️ Another day"), encode(Cb.DAYS, helpdesk.id, 0, *extra))])
    text = join(note, f"{place(helpdesk, t)}\n📅 {long_day(t, day)}", t("Choose a time:"))
    return text, keyboard(rows)


def confirm_screen(
    view: View,
    helpdesk: Helpdesk,
    starts_at: datetime,
    moving: Moving | None,
    moving_from: Helpdesk | None = None,
) -> Screen:
    """Book (or move to) this time? `moving_from`: the helpdesk of the booking moved."""
    t = view.t
    extra = _extra(moving)
    day = view.local(starts_at).strftime("%Y%m%d")
    choice = f"📅 {when(view, starts_at)}\n{place(helpdesk, t)}"
    # A moderated helpdesk confirms each appointment: the citizen sends a request.
    asked = (
        t("At this helpdesk every appointment is confirmed by the staff: you'll send a request.")
        if helpdesk.moderated
        else ""
    )
    if moving is None:
        text = join(t("Please check, then confirm:"), choice, asked)
        confirm = t("📨 Send the request") if helpdesk.moderated else t("✅ Confirm")
    else:
        assert moving_from is not None  # the helpdesk of the booking being moved
        moved_from = t(
            "<b>From:</b> {when}, {name}",
            when=when(view, moving.starts_at),
            name=html.escape(moving_from.name),
        )
        text = join(t("Move your appointment?"), moved_from, t("<b>To:</b>") + "\n" + choice, asked)
        confirm = t("📨 Ask to move it here") if helpdesk.moderated else t("✅ Move it here")
    rows = [
        [(confirm, encode(Cb.BOOK, helpdesk.id, _epoch(starts_at), *extra))],
        [(t("↩️ Another time"), encode(Cb.DAY, helpdesk.id, day, *extra))],
    ]
    return text, keyboard(rows)


# --- an appointment, an offer, the waitlist ----------------------------------------------


def booking_screen(view: View, booking: Booking, helpdesk: Helpdesk, note: str = "") -> Screen:
    """The citizen's active booking with "Move" and "Cancel"; a request still pending is
    shown as a request, with until when its place is held."""
    t = view.t
    details = booking_details(view, booking, helpdesk)
    if moderation.is_pending(booking):
        heading = t("<b>Your appointment request</b> (waiting for the helpdesk's confirmation)")
        text = join(note, heading + "\n" + details, request_held(view, booking))
    else:
        text = join(note, t("<b>Your appointment</b>") + "\n" + details, what_to_bring(t))
    return text, keyboard([manage_row(t, booking.id)])


def moving_note(view: View, booking: Booking, helpdesk: Helpdesk) -> str:
    """Above the choices while moving: the appointment (or the request) as it is now."""
    now = (
        view.t("<b>Your request now</b>")
        if moderation.is_pending(booking)
        else view.t("<b>Your appointment now</b>")
    )
    return now + "\n" + booking_details(view, booking, helpdesk)


def cancel_question(view: View, booking: Booking, helpdesk: Helpdesk) -> Screen:
    t = view.t
    rows = [
        [(t("Yes, cancel it"), encode(Cb.CANCEL_CONFIRM, booking.id))],
        [(t("No, keep my appointment"), encode(Cb.NOOP))],
    ]
    question = (
        t("Do you really want to withdraw this request?")
        if moderation.is_pending(booking)
        else t("Do you really want to cancel this appointment?")
    )
    text = join(question, booking_details(view, booking, helpdesk))
    return text, keyboard(rows)


def cancelled_text(view: View) -> str:
    t = view.t
    return join(
        t(
            "Your appointment is cancelled. Thank you for letting us know: "
            "the place is free again for someone else."
        ),
        t("If you want, you can book a new one."),
    )


def attending_text(view: View, booking: Booking, helpdesk: Helpdesk) -> str:
    details = booking_details(view, booking, helpdesk)
    return join(view.t("🙏 Thank you! We're expecting you:"), details)


def held_place(offered: Offered) -> HeldPlace:
    """The place an open waitlist offer holds, as the offer screens show it."""
    slot = offered.slot
    return HeldPlace(
        offered.entry.id, offered.helpdesk, slot.starts_at, slot.ends_at, offered.expires_at
    )


def offer_screen(view: View, held: HeldPlace) -> Screen:
    t = view.t
    if view.local(held.expires_at).date() == view.today:
        hold = t(
            "We're holding it for you until {time}. Do you want it?",
            time=clock(view, held.expires_at),
        )
    else:
        hold = t(
            "We're holding it for you until {when}. Do you want it?",
            when=when(view, held.expires_at),
        )
    text = join(
        t("🎉 <b>A place has freed up for you!</b>"),
        f"📅 {when(view, held.starts_at)}\n{place(held.helpdesk, t)}",
        hold,
    )
    rows = [
        [(t("✅ Yes, book it"), encode(Cb.OFFER_ACCEPT, held.entry_id))],
        [(t("❌ No, thanks"), encode(Cb.OFFER_DECLINE, held.entry_id))],
    ]
    return text, keyboard(rows)


def waiting_text(view: View) -> str:
    return view.t(
        "🔔 You are on the waitlist: we'll write to you here as soon as a place frees up. "
        "We'll hold it for you for {minutes} minutes, so answer as soon as you can.",
        minutes=view.hold_minutes,
    )


def lapsed_offer_text(view: View) -> str:
    """An offer whose hold lapsed a moment ago: the housekeeping job is passing it on."""
    lapsed = view.t("Write /prenotazione again in a minute to look for another time.")
    return join(refusal(view, OfferExpired.code), lapsed)


def declined_text(view: View) -> str:
    return view.t(
        "All right: the place goes to the next person waiting, and you are off the waitlist."
    )


def not_yours_text(view: View) -> str:
    return join(
        view.t("I can't find that appointment among yours, or it is no longer active."),
        view.t("Write /prenotazione to see your appointment."),
    )


def holding_screen(view: View, standing: Standing, note: str = "") -> Screen | None:
    """What the citizen holds: their appointment, an open offer, or their place on the
    waitlist; None when they hold none of them."""
    match standing:
        case Booked(booking=booking, helpdesk=helpdesk):
            return booking_screen(view, booking, helpdesk, note)
        case Offered():
            text, buttons = offer_screen(view, held_place(standing))
            return join(note, text), buttons
        case Waiting(entry=entry) if entry.state == WaitlistState.WAITING.value:
            return join(note, waiting_text(view)), None
        case Waiting():
            return join(note, lapsed_offer_text(view)), None
    return None


def where_you_stand(view: View, standing: Standing, note: str = "") -> Screen | None:
    """Why they can't book (yet), or what they hold; None when they may book a new place."""
    if isinstance(standing, NotYet):
        return join(note, not_yet_text(view, standing)), None
    return holding_screen(view, standing, note)


def nothing_booked_screen(view: View, opening: str, standing: Standing) -> Screen:
    """No appointment, offer or waitlist: how to book, or why they can't (yet)."""
    if isinstance(standing, NotYet):
        return join(opening, not_yet_text(view, standing)), None
    return opening, keyboard(book_button(view.t))
