"""Funds and their ledger (coordinators, SPEC 5): `/funds` with every fund's figures and
what the plans waiting for approval will ask of it, a fund's page with its deposits and
ledger, and the payments of one intervention of a plan.

Amounts are typed the reader's way (`shared.money.parse_euros`: "1.234,50" in Italian)
and shown with Babel. A refusal comes back as the form, every value as typed and the
message next to its field, chosen by the error's `code`; the ledger's refusals name the
fund and what is left or still to pay.

The payment form is a partial (`funds/_payment_form.html`) the plan page shows too; it
posts here, and comes back here when refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from dashboard.deps import COORDINATION, Session, Viewer, allow
from dashboard.limits import TOO_LONG
from dashboard.pages import redirect_with_notice, render_form_page
from dashboard.params import BadDay, FormText, QueryId, QueryWord, RecordId, read_day
from dashboard.routes.agenda import date_labeler, local_today
from shared import money
from shared.db import utcnow
from shared.funds import service as funds
from shared.funds.errors import FundError, FundNotFound
from shared.funds.models import Payee, PaymentMethod
from shared.i18n import N_, Translator
from shared.limits import DAY_RANGE, FIRST_DAY, LAST_DAY
from shared.plans import catalog
from shared.plans import money as plan_money
from shared.plans.errors import PlanError
from shared.plans.models import PlanSupport

router = APIRouter()
E = TypeVar("E", bound=StrEnum)
Coordinator = Annotated[Viewer, Depends(allow(*COORDINATION))]

NOTICES = {
    "fund_created": ("success", N_("Fund created. Now record the money the funder deposited.")),
    "fund_saved": ("success", N_("Fund saved.")),
    "deposit": ("success", N_("Deposit recorded.")),
    # Shown by the plan page, where a recorded payment leads.
    "payment": ("success", N_("Payment recorded.")),
}

REQUIRED = N_("This field is required.")
CHOOSE = N_("Choose one of the options.")
# What staff read for each refusal, by the error's `code` (amounts typed, then the ledger's).
MESSAGES = {
    money.AmountMissing.code: N_("Write the amount."),
    money.AmountNotANumber.code: N_("Write an amount in euros, for example 1.234,50."),
    money.InvalidAmount.code: N_("Write an amount in euros, for example 1.234,50."),
    money.AmountNegative.code: N_("The amount can't be negative."),
    money.AmountTooPrecise.code: N_("At most two decimals: euros and cents."),
    money.AmountAmbiguous.code: N_("This amount reads two ways: write it like 1.234,50."),
    money.AmountTooLarge.code: N_("The amount is too large: at most {max}."),
    "amount_out_of_range": N_("The amount must be between {min} and {max}."),
    "field_missing": REQUIRED,
    "text_too_long": TOO_LONG,
    "fund_name_taken": N_("Another fund already has this name."),
    "fund_inactive": N_("The fund “{fund}” takes no new commitments."),
    "fund_exhausted": N_("The fund “{fund}” has {left} left: {needed} are needed."),
    "payment_exceeds_commitment": N_(
        "The fund “{fund}” has {outstanding} committed and not yet paid for this support: "
        "the payment can't be more."
    ),
    "release_exceeds_commitment": N_(
        "The fund “{fund}” has {outstanding} committed and not yet paid for this support."
    ),
    "support_without_fund": N_("This support is not paid from a fund."),
    "paid_in_future": N_("The payment date can't be in the future."),
}
OTHER_REFUSAL = N_("This could not be saved: check the values and try again.")
# The field a refusal belongs next to, by code; the others go above the form.
FIELD_OF = {
    "fund_name_taken": "name",
    "amount_out_of_range": "amount",
    "fund_exhausted": "amount",
    "payment_exceeds_commitment": "amount",
    "release_exceeds_commitment": "amount",
    "paid_in_future": "paid_on",
}


@dataclass(frozen=True)
class FundLimits:
    """The funds' own limits, for the forms' `maxlength`, `min` and `max`."""

    name: int = funds.MAX_NAME
    funder: int = funds.MAX_FUNDER
    note: int = funds.MAX_NOTE
    first_day: str = FIRST_DAY.isoformat()
    last_day: str = LAST_DAY.isoformat()


FUND_LIMITS = FundLimits()


def euros_of(language: str) -> Callable[[int], str]:
    """Cents as the page's reader writes money ("1.234,50 €" in Italian)."""

    def euros(cents: int) -> str:
        return money.format_euros(cents, language)

    return euros


def payment_form_context(language: str) -> dict[str, Any]:
    """What `funds/_payment_form.html` needs besides its own values (`support`,
    `outstanding_cents`, `errors`, `values`, and the page's `csrf_token`): for a page that
    includes it, such as the plan page."""
    return {"euros": euros_of(language), "fund_limits": FUND_LIMITS}


def payment_defaults(support: PlanSupport, today: date) -> dict[str, str]:
    """The payment form's first values: today, and whom the plan says to pay."""
    paid_to = (support.details or {}).get("paid_to")
    return {
        "paid_on": today.isoformat(),
        "paid_to": paid_to if paid_to in {p.value for p in Payee} else "",
        "method": PaymentMethod.BANK_TRANSFER.value,
    }


class Form:
    """A form's raw values and the message for each bad field, in the viewer's language.

    A bad value comes back as a placeholder: callers use the parsed values only when
    `errors` is empty.
    """

    def __init__(self, values: dict[str, str], t: Translator) -> None:
        self.values = values
        self.t = t
        self.errors: dict[str, str] = {}
        self.euros = euros_of(t.language)

    def _fail(self, name: str, message: str, **params: object) -> None:
        self.errors.setdefault(name, self.t(message, **params))

    def text(self, name: str, *, required: bool = False) -> str:
        value = self.values.get(name, "").strip()
        if required and not value:
            self._fail(name, REQUIRED)
        return value

    def cents(self, name: str) -> int:
        try:
            return money.parse_euros(self.values.get(name, ""), self.t.language)
        except money.InvalidAmount as exc:
            self._fail(name, MESSAGES[exc.code], max=self.euros(money.MAX_CENTS))
            return 0

    def day(self, name: str) -> date:
        try:
            found = read_day(self.values.get(name, ""))
        except BadDay as exc:
            self._fail(name, exc.message, **DAY_RANGE)
            return date.min
        if found is None:
            self._fail(name, REQUIRED)
            return date.min
        return found

    def choice(self, name: str, options: type[E]) -> E | None:
        value = self.values.get(name, "").strip()
        try:
            return options(value)
        except ValueError:
            self._fail(name, CHOOSE if value else REQUIRED)
            return None

    def refused(self, exc: FundError | PlanError, fund_name: str = "") -> None:
        """Put the domain's refusal next to the field it is about (or above the form)."""
        code = getattr(exc, "code", "")
        field = getattr(exc, "field", None) or FIELD_OF.get(code, "form")
        params: Mapping[str, object] = {
            "max_length": getattr(exc, "max_length", 0),
            "min": self.euros(1),
            "max": self.euros(getattr(exc, "max_cents", money.MAX_CENTS)),
            "fund": getattr(exc, "fund_name", fund_name),
            "left": self.euros(getattr(exc, "left_cents", 0)),
            "needed": self.euros(getattr(exc, "needed_cents", 0)),
            "outstanding": self.euros(getattr(exc, "outstanding_cents", 0)),
        }
        self._fail(field, MESSAGES.get(code, OTHER_REFUSAL), **params)


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
            "euros": euros_of(viewer.language),
            "date_label": date_labeler(viewer, "medium"),
            "fund_limits": FUND_LIMITS,
            "support_labels": {kind.value: entry.label for kind, entry in catalog.CATALOG.items()},
            **context,
        },
        notice=NOTICES.get(notice),
        status=status,
    )


# --- the funds -----------------------------------------------------------------------


async def _index(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    overview = await plan_money.fund_overview(session=session)
    return _page(
        request,
        viewer,
        "funds/index.html",
        {
            "overview": overview,
            "short": [row for row in overview if row.short_of_pending],
            "values": values or {},
            "errors": errors or {},
        },
        notice=notice,
        status=status,
    )


@router.get("/funds")
async def funds_home(
    request: Request, session: Session, viewer: Coordinator, notice: QueryWord = ""
) -> HTMLResponse:
    return await _index(request, session, viewer, notice=notice)


@router.post("/funds")
async def create_fund(
    request: Request,
    session: Session,
    viewer: Coordinator,
    name: FormText = "",
    funder: FormText = "",
) -> Response:
    form = Form({"name": name, "funder": funder}, Translator(viewer.language))
    form.text("name", required=True)
    form.text("funder", required=True)
    if not form.errors:
        try:
            fund = await funds.create_fund(
                session=session, name=name, funder=funder, actor=viewer.actor
            )
        except FundError as exc:
            form.refused(exc)
        else:
            return redirect_with_notice(f"/funds/{fund.id}", "fund_created")
    return await _index(
        request, session, viewer, values=form.values, errors=form.errors, status=400
    )


async def _fund_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    fund_id: int,
    *,
    before: int | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    try:
        ledger = await plan_money.fund_ledger(session=session, fund_id=fund_id, before_id=before)
    except FundNotFound:
        raise HTTPException(status_code=404) from None
    fund = ledger.fund
    shown = {
        "name": fund.name,
        "funder": fund.funder,
        "active": "1" if fund.active else "0",
    } | (values or {})
    here = f"/funds/{fund.id}"
    return _page(
        request,
        viewer,
        "funds/fund.html",
        {
            "fund": fund,
            "ledger": ledger,
            "older_url": f"{here}?before={ledger.older}" if ledger.older else "",
            "newest_url": here if before is not None else "",
            "values": shown,
            "errors": errors or {},
        },
        notice=notice,
        status=status,
    )


async def _save_on_fund_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    fund_id: int,
    form: Form,
    save: Callable[[], Awaitable[object]],
    notice: str,
) -> Response:
    """Save a form of the fund's page when it parsed: back to the page with `notice`, or the
    page again (400) with the refusal next to its field. A fund gone is a 404."""
    if not form.errors:
        try:
            await save()
        except FundNotFound:
            raise HTTPException(status_code=404) from None
        except FundError as exc:
            form.refused(exc)
        else:
            return redirect_with_notice(f"/funds/{fund_id}", notice)
    return await _fund_page(
        request, session, viewer, fund_id, values=form.values, errors=form.errors, status=400
    )


@router.get("/funds/{fund_id}")
async def fund_page(
    request: Request,
    session: Session,
    viewer: Coordinator,
    fund_id: RecordId,
    before: QueryId = None,
    notice: QueryWord = "",
) -> HTMLResponse:
    return await _fund_page(request, session, viewer, fund_id, before=before, notice=notice)


@router.post("/funds/{fund_id}")
async def update_fund(
    request: Request,
    session: Session,
    viewer: Coordinator,
    fund_id: RecordId,
    name: FormText = "",
    funder: FormText = "",
    active: FormText = "",
) -> Response:
    form = Form({"name": name, "funder": funder, "active": active}, Translator(viewer.language))
    form.text("name", required=True)
    form.text("funder", required=True)
    if active not in ("0", "1"):
        form.errors["active"] = form.t(CHOOSE)

    async def save() -> None:
        await funds.update_fund(
            session=session, fund_id=fund_id, name=name, funder=funder,
            active=active == "1", actor=viewer.actor,
        )  # fmt: skip

    return await _save_on_fund_page(request, session, viewer, fund_id, form, save, "fund_saved")


@router.post("/funds/{fund_id}/deposits")
async def deposit(
    request: Request,
    session: Session,
    viewer: Coordinator,
    fund_id: RecordId,
    amount: FormText = "",
    note: FormText = "",
) -> Response:
    form = Form({"amount": amount, "note": note}, Translator(viewer.language))
    cents = form.cents("amount")

    async def save() -> None:
        await funds.deposit(
            session=session, fund_id=fund_id, amount_cents=cents, note=note, actor=viewer.actor
        )

    return await _save_on_fund_page(request, session, viewer, fund_id, form, save, "deposit")


# --- payments of one intervention ----------------------------------------------------


async def _payments_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    support_id: int,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    try:
        found = await plan_money.support_money(session=session, support_id=support_id)
    except plan_money.SupportNotFound:
        raise HTTPException(status_code=404) from None
    return _page(
        request,
        viewer,
        "funds/payments.html",
        {
            "found": found,
            "support": found.support,
            "outstanding_cents": found.outstanding_cents,
            "values": values or payment_defaults(found.support, local_today(request)),
            "errors": errors or {},
        },
        status=status,
    )


@router.get("/plans/supports/{support_id}/payments")
async def payments_page(
    request: Request, session: Session, viewer: Coordinator, support_id: RecordId
) -> HTMLResponse:
    return await _payments_page(request, session, viewer, support_id)


@router.post("/plans/supports/{support_id}/payments")
async def record_payment(
    request: Request,
    session: Session,
    viewer: Coordinator,
    support_id: RecordId,
    paid_on: FormText = "",
    amount: FormText = "",
    paid_to: FormText = "",
    method: FormText = "",
    note: FormText = "",
) -> Response:
    form = Form(
        {"paid_on": paid_on, "amount": amount, "paid_to": paid_to, "method": method, "note": note},
        Translator(viewer.language),
    )
    day = form.day("paid_on")
    cents = form.cents("amount")
    payee = form.choice("paid_to", Payee)
    how = form.choice("method", PaymentMethod)
    if not form.errors and payee is not None and how is not None:
        try:
            _movement, case_id = await plan_money.record_support_payment(
                session=session, support_id=support_id, amount_cents=cents, paid_on=day,
                paid_to=payee, method=how, note=note, actor=viewer.actor,
                today=local_today(request), now=utcnow(),
            )  # fmt: skip
        except plan_money.SupportNotFound:
            raise HTTPException(status_code=404) from None
        except (FundError, PlanError) as exc:
            fund_name = await _fund_name(session, exc)
            form.refused(exc, fund_name)
        else:
            return redirect_with_notice(f"/cases/{case_id}/plan", "payment")
    return await _payments_page(
        request, session, viewer, support_id, values=form.values, errors=form.errors, status=400
    )


async def _fund_name(session: Session, exc: Exception) -> str:
    """The name of the fund a ledger refusal is about (the refusal carries its id)."""
    fund_id = getattr(exc, "fund_id", None)
    if fund_id is None:
        return ""
    try:
        return (await funds.get_fund(session=session, fund_id=fund_id)).name
    except FundNotFound:
        return ""
