"""Phone and walk-in intake (SPEC J7): the questionnaire filled by staff, then a booking.

The form is generated from the questionnaire's definition and every answer is checked by
its validators (`shared.intake.staff`); the booking goes through the booking service with
its rules. These routes only turn form fields into calls and errors into messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from dashboard import slot_picker
from dashboard.deps import STAFF, Session, Viewer, allow, settings_of, writes_on_read
from dashboard.params import QueryId, QueryText, RecordId, storable_form
from dashboard.templating import render
from shared import program
from shared.audit import service as audit
from shared.booking.errors import BookingError
from shared.cases import labels
from shared.cases.errors import CaseNotVisible
from shared.citizens.models import Channel
from shared.citizens.standing import Booked
from shared.db import utcnow
from shared.i18n import N_, Translator
from shared.intake import staff as staff_intake
from shared.intake import validators
from shared.intake.errors import IntakeNotFound
from shared.intake.questionnaire import (
    QUESTIONNAIRE,
    AnswerType,
    Step,
    option_label,
    question_text,
    reask_text,
    step,
    summary,
)
from shared.settings import Settings

router = APIRouter()
StaffViewer = Annotated[Viewer, Depends(allow(*STAFF))]

CHANNELS = (
    (Channel.PHONE.value, N_("Phone call")),
    (Channel.WALK_IN.value, N_("In person at a helpdesk")),
)
CHANNEL_LABELS = {
    **dict(CHANNELS),
    Channel.TELEGRAM.value: N_("Telegram bot"),
}
MAX_FIELD = 600

FIELD_ERRORS = {
    staff_intake.CHANNEL_FIELD: N_("Choose how the citizen contacted us."),
    staff_intake.CONSENT_FIELD: N_(
        "The citizen must accept the privacy notice before anything is stored."
    ),
}
BOOKING_ERRORS = {
    **slot_picker.SLOT_ERRORS,
    "already_booked": N_("The citizen already has an active booking."),
    # `NotAllowedToBook`, by the citizen's standing.
    "not_consented": N_("The citizen has not accepted the privacy notice: they can't book."),
    "questionnaire": N_("The citizen's questionnaire is not completed: they can't book yet."),
    "not_eligible": N_("Only eligible citizens can book an interview from here."),
}


# The household is two number boxes here, not the bot's "write two numbers": its hint and
# messages speak of the boxes, each message next to the box it is about.
HOUSEHOLD_HINT = N_(
    "How many people live in the citizen's home, the citizen included, and how many of "
    "them are under 18."
)
HOUSEHOLD_ERRORS = {
    "empty": N_("Write how many people are in the household."),
    "format": N_("Write the number of people in figures."),
    "members_range": N_("A household has from 1 to {max} people, the citizen included."),
    "too_long": N_("A household has from 1 to {max} people, the citizen included."),
    "minors_range": N_("There must be fewer minors than people in the household."),
    "minors_exceed": N_("There must be fewer minors than people in the household."),
}
HOUSEHOLD_STEPS = {s.key for s in QUESTIONNAIRE if s.answer is AnswerType.HOUSEHOLD}
# Which box a household message goes next to.
_MINORS_REASONS = ("minors_range", "minors_exceed")


@dataclass(frozen=True)
class StepView:
    """One question of the form, its texts in the viewer's language."""

    key: str
    answer: str
    title: str
    question: str
    optional: bool
    condition: str
    options: list[tuple[str, str]] = field(default_factory=list)
    # The longest answer its validator accepts, for a typed answer (None for choices).
    max_length: int | None = None


def _condition_note(s: Step, t: Translator) -> str:
    if s.condition is None:
        return ""
    source = step(s.condition.key)
    if s.condition.is_in is not None:
        answers = ", ".join(option_label(source, k, t) for k in s.condition.is_in)
        return t(N_("Only if “{step}” is: {answers}."), step=t(source.title), answers=answers)
    answers = ", ".join(option_label(source, k, t) for k in s.condition.not_in)
    return t(N_("Only if “{step}” is not: {answers}."), step=t(source.title), answers=answers)


def _steps(t: Translator, settings: Settings) -> list[StepView]:
    return [
        StepView(
            key=s.key,
            answer=s.answer.value,
            title=t(s.title),
            question=t(HOUSEHOLD_HINT)
            if s.answer is AnswerType.HOUSEHOLD
            else question_text(s, t, settings=settings),
            optional=s.optional,
            condition=_condition_note(s, t),
            options=[(o.key, option_label(s, o.key, t)) for o in s.options],
            max_length=validators.MAX_TYPED_ANSWER.get(s.answer),
        )
        for s in QUESTIONNAIRE
    ]


def _error_box(key: str, reason: str, form: IntakeForm) -> str:
    """The field a message goes next to: the household's is one of its two boxes."""
    if key not in HOUSEHOLD_STEPS:
        return key
    members = str(form.values.get(f"{key}_members", "")).strip()
    minors = str(form.values.get(f"{key}_minors", "")).strip()
    bad_minors = (
        reason == "format" and members.isdecimal() and bool(minors) and not minors.isdecimal()
    )
    return f"{key}_minors" if reason in _MINORS_REASONS or bad_minors else f"{key}_members"


def _error_text(key: str, reason: str, t: Translator, settings: Settings) -> str:
    if key in FIELD_ERRORS:
        return t(FIELD_ERRORS[key])
    if key in HOUSEHOLD_STEPS:
        message = HOUSEHOLD_ERRORS.get(reason, HOUSEHOLD_ERRORS["format"])
        return t(message, max=validators.MAX_HOUSEHOLD_MEMBERS)
    s = step(key)
    # The bot's "tap Yes or No" would puzzle someone filling a form.
    if reason in ("empty", "unknown_option") and s.options:
        return t(N_("Choose an answer."))
    if reason == "empty":
        return t(N_("This answer is required."))
    return reask_text(s, reason, t, settings=settings)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""


def _ids(values: list[str]) -> set[int]:
    found = set()
    for value in values:
        for part in value.split(","):
            if part.strip().isdecimal():
                found.add(int(part))
    return found


@dataclass
class IntakeForm:
    """What staff typed: raw answers for the validators, and values to show again."""

    channel: str = ""
    consent: bool = False
    acknowledged: set[int] = field(default_factory=set)
    raw: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, form: FormData) -> IntakeForm:
        parsed = cls(
            channel=_text(form, "channel"),
            consent=_text(form, "consent") == "yes",
            acknowledged=_ids([v for v in form.getlist("acknowledged") if isinstance(v, str)]),
        )
        for s in QUESTIONNAIRE:
            if s.answer is AnswerType.MULTI_CHOICE:
                chosen = [v[:MAX_FIELD] for v in form.getlist(s.key) if isinstance(v, str)]
                parsed.raw[s.key] = ",".join(chosen)
                parsed.values[s.key] = chosen
            elif s.answer is AnswerType.HOUSEHOLD:
                members, minors = _text(form, f"{s.key}_members"), _text(form, f"{s.key}_minors")
                parsed.raw[s.key] = staff_intake.household_input(members, minors)
                parsed.values[f"{s.key}_members"] = members
                parsed.values[f"{s.key}_minors"] = minors
            else:
                parsed.raw[s.key] = parsed.values[s.key] = _text(form, s.key)
        return parsed


def _form_page(
    request: Request,
    viewer: Viewer,
    form: IntakeForm,
    *,
    errors: dict[str, str] | None = None,
    duplicates: list[Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    settings = settings_of(request)
    t = Translator(viewer.language)
    return render(
        request,
        "intake/form.html",
        {
            "steps": _steps(t, settings),
            "channels": CHANNELS,
            "channel_labels": CHANNEL_LABELS,
            "form": form,
            "errors": errors or {},
            "duplicates": duplicates or [],
            "duplicate_ids": ",".join(str(c.id) for c in duplicates or []),
        },
        status_code=status,
    )


@router.get("/intake")
async def intake_form(request: Request, viewer: StaffViewer) -> HTMLResponse:
    return _form_page(request, viewer, IntakeForm())


@router.post("/intake", response_model=None)
async def submit_intake(request: Request, session: Session, viewer: StaffViewer) -> Response:
    settings = settings_of(request)
    form = IntakeForm.parse(await storable_form(request))
    try:
        submission = await staff_intake.submit_intake(
            session=session,
            settings=settings,
            channel=form.channel,
            raw=form.raw,
            consent=form.consent,
            actor=viewer.actor,
            now=utcnow(),
            acknowledged=form.acknowledged,
        )
    except staff_intake.InvalidSubmission as exc:
        t = Translator(viewer.language)
        errors = {
            _error_box(key, reason, form): _error_text(key, reason, t, settings)
            for key, reason in exc.errors.items()
        }
        return _form_page(request, viewer, form, errors=errors, status=400)
    except staff_intake.DuplicatesFound as exc:
        return _form_page(request, viewer, form, duplicates=exc.duplicates, status=409)
    return RedirectResponse(f"/intake/{submission.citizen.id}", status_code=303)


async def _result_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    citizen_id: int,
    *,
    helpdesk_id: int | None = None,
    day: str = "",
    slot_error: str = "",
    status: int = 200,
) -> HTMLResponse:
    """The citizen's intake and, while they may book, free times (of `day`, a filter typed
    into the page's own form: a bad one is shown next to it)."""
    settings = settings_of(request)
    t = Translator(viewer.language)
    try:
        submission = await staff_intake.get_submission(
            session=session,
            settings=settings,
            citizen_id=citizen_id,
            staff=viewer.member,
            now=utcnow(),
        )
    except IntakeNotFound:
        raise HTTPException(status_code=404) from None
    except CaseNotVisible:
        raise HTTPException(status_code=403) from None
    citizen, standing = submission.citizen, submission.standing
    assert standing is not None  # `get_submission` reads it
    picker = await slot_picker.pick_slot(
        session=session,
        settings=settings,
        t=t,
        helpdesk_id=helpdesk_id,
        day=day,
        offer=standing.may_book and not submission.came,
        urgent=citizen.urgent,
    )
    if picker.day_error:
        status = 400
    duplicates = await staff_intake.find_duplicates(
        session=session,
        phone=citizen.phone,
        fiscal_code=citizen.fiscal_code,
        exclude_citizen_id=citizen.id,
    )
    if request.method == "GET":
        await audit.record(
            session=session,
            actor=viewer.actor,
            action="citizen.read",
            object_type="citizen",
            object_id=str(citizen.id),
            details={"page": "intake"},
        )
    return render(
        request,
        "intake/result.html",
        {
            "citizen": citizen,
            "intake": submission.intake,
            "case_id": submission.case_id,
            "eligibility": submission.eligibility,
            "override": submission.override,
            "standing": standing,
            "reasons": [r.text(t, settings=settings) for r in submission.eligibility.reasons],
            "what_to_bring": [t(item) for item in program.WHAT_TO_BRING],
            "answers": summary(submission.intake.answers, t),
            "channel_label": CHANNEL_LABELS.get(citizen.channel, citizen.channel),
            "channel_labels": CHANNEL_LABELS,
            "duplicates": duplicates,
            "active": standing if isinstance(standing, Booked) else None,
            "came": submission.came,
            "state_label": labels.booking_state,
            **picker.context(),
            "slot_error": slot_error,
        },
        status_code=status,
    )


@router.get("/intake/{citizen_id}")
@writes_on_read()
async def intake_result(
    request: Request,
    session: Session,
    viewer: StaffViewer,
    citizen_id: RecordId,
    helpdesk: QueryId = None,
    day: QueryText = "",
) -> HTMLResponse:
    return await _result_page(request, session, viewer, citizen_id, helpdesk_id=helpdesk, day=day)


@router.post("/intake/{citizen_id}/booking", response_model=None)
async def book_interview(
    request: Request, session: Session, viewer: StaffViewer, citizen_id: RecordId
) -> Response:
    parsed = slot_picker.parse_slot(_text(await storable_form(request), "slot"))
    if parsed is None:
        code, status = "no_slot", 400
    else:
        helpdesk_id, starts_at = parsed
        try:
            await staff_intake.book_after_intake(
                session=session,
                settings=settings_of(request),
                citizen_id=citizen_id,
                helpdesk_id=helpdesk_id,
                starts_at=starts_at,
                staff=viewer.member,
            )
        except IntakeNotFound:
            raise HTTPException(status_code=404) from None
        except CaseNotVisible:
            raise HTTPException(status_code=403) from None
        except BookingError as exc:
            code, status = exc.code, 409 if exc.code == "slot_taken" else 400
        else:
            return RedirectResponse(f"/intake/{citizen_id}", status_code=303)
    message = BOOKING_ERRORS.get(code, slot_picker.BOOKING_REFUSED)
    t = Translator(viewer.language)
    return await _result_page(
        request, session, viewer, citizen_id, slot_error=t(message), status=status
    )
