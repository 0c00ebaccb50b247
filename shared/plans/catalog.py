"""The intervention catalog of the plan (SPEC section 5) as data.

Each of the six interventions is an `InterventionType`: a label, the organisation that
usually provides it, and a pydantic model of its own fields. That one definition
validates the editor's inputs, renders them, shows a filled support on the case and plan
pages, prints it on the PDF and names the columns of the exports; a new field, or a new
intervention, is a change to this file only.

Three kinds of rule, kept apart:
- malformed values (a word in an amount, an unknown option, a text too long) are refused
  when the plan is saved, like the interview form;
- what a support needs before the plan can be submitted (`required` fields) is checked
  at submission, so a draft can be saved half-done;
- limits that are the law's (social microcredit at most 10,000 € over 5 years) are
  refused; the region's guidance for internships (the allowance floor, 2–12 months) only
  warns, because the case worker may have a reason.

Money is integer cents. `amount_cents` is what a support takes from its fund when the
plan is approved (0 for the supports that cost the program nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from shared import forms, money
from shared.forms import FieldView, FormModel, Money, Widget, field
from shared.i18n import N_, Translator
from shared.plans.errors import IncompletePlan, InvalidInput

MAX_CENTS = 10_000_000 * 100
SOCIAL_MICROCREDIT_MAX_CENTS = 10_000 * 100
SOCIAL_MICROCREDIT_MAX_MONTHS = 60
INTERNSHIP_MONTHS = (2, 12)


class Kind(StrEnum):
    EMERGENCY_SUPPORT = "emergency_support"
    MICROCREDIT = "microcredit"
    PSYCHOLOGICAL_SUPPORT = "psychological_support"
    BENEFITS = "benefits"
    JOB_SEARCH = "job_search"
    INTERNSHIP = "internship"


def required(label: str, widget: Widget, **kwargs: Any) -> Any:
    """A field the support needs before the plan is submitted."""
    return field(label, widget, extra={"required": True}, **kwargs)


def _euros(label: str, *, needed: bool = False, help: str | None = None) -> Any:
    make = required if needed else field
    return make(label, Widget.MONEY, ge=0, le=MAX_CENTS, help=help)


def months_between(starts_on: date, ends_on: date) -> int:
    """Calendar months from start to end, a started month counted whole (1 Jan–31 Mar: 3)."""
    months = (ends_on.year - starts_on.year) * 12 + ends_on.month - starts_on.month
    return max(months + (1 if ends_on.day >= starts_on.day else 0), 0)


# --- the six interventions -------------------------------------------------------------


class EmergencySupport(FormModel):
    form: str | None = required(
        N_("Form of the support"), Widget.CHOICE,
        options=(("monthly", N_("Every month")), ("one_off", N_("One-off"))),
    )  # fmt: skip
    monthly_amount: Money = _euros(N_("Amount per month (€)"))
    months: int | None = field(N_("Number of months"), Widget.NUMBER, ge=1, le=24)
    one_off_amount: Money = _euros(N_("One-off amount (€)"))
    purpose: list[str] = field(
        N_("What it pays for"), Widget.MULTI,
        options=(("rent", N_("Rent")), ("utilities", N_("Utility bills")),
                 ("food", N_("Food and basic needs")), ("health", N_("Health expenses")),
                 ("school", N_("School expenses")), ("other", N_("Other"))),
    )  # fmt: skip
    purpose_notes: str | None = field(N_("Details of the purpose"), Widget.TEXT)
    paid_to: str | None = required(
        N_("Paid to"), Widget.CHOICE,
        options=(("citizen", N_("To the citizen")), ("landlord", N_("Directly to the landlord")),
                 ("utility", N_("Directly to the utility company")), ("other", N_("Other"))),
    )  # fmt: skip
    payee: str | None = field(
        N_("Landlord or company paid"), Widget.TEXT,
        help=N_("When the money does not go to the citizen."),
    )  # fmt: skip


class Microcredit(FormModel):
    # Not `kind`: the editor names a detail after the support (`support-<n>.<field>`), and
    # the support's own type is `support-<n>.kind`.
    credit_type: str | None = required(
        N_("Type of microcredit"), Widget.CHOICE,
        options=(("social", N_("Social microcredit")), ("business", N_("Business microcredit"))),
    )  # fmt: skip
    amount_requested: Money = _euros(
        N_("Amount requested (€)"), needed=True, help=N_("Social microcredit: at most 10.000 €.")
    )
    duration_months: int | None = required(
        N_("Duration (months)"), Widget.NUMBER, ge=1, le=120,
        help=N_("Social microcredit: at most 60 months (5 years)."),
    )  # fmt: skip
    lender: str | None = field(N_("Lender"), Widget.TEXT)
    tutor: str | None = field(N_("Tutor"), Widget.TEXT)
    application_state: str | None = field(
        N_("Application"), Widget.CHOICE,
        options=(("to_prepare", N_("To prepare")), ("submitted", N_("Submitted")),
                 ("approved", N_("Approved")), ("refused", N_("Refused")),
                 ("disbursed", N_("Disbursed"))),
    )  # fmt: skip

    @field_validator("amount_requested")
    @classmethod
    def _social_amount(cls, value: int | None, info: ValidationInfo) -> int | None:
        social = info.data.get("credit_type") == "social"
        if social and value is not None and value > SOCIAL_MICROCREDIT_MAX_CENTS:
            raise PydanticCustomError("microcredit_amount", "over the legal maximum")
        return value

    @field_validator("duration_months")
    @classmethod
    def _social_duration(cls, value: int | None, info: ValidationInfo) -> int | None:
        social = info.data.get("credit_type") == "social"
        if social and value is not None and value > SOCIAL_MICROCREDIT_MAX_MONTHS:
            raise PydanticCustomError("microcredit_duration", "over the legal maximum")
        return value


class PsychologicalSupport(FormModel):
    provider: str | None = field(N_("Psychologist or service"), Widget.TEXT)
    sessions_planned: int | None = required(N_("Sessions planned"), Widget.NUMBER, ge=1, le=100)
    sessions_attended: int | None = field(N_("Sessions attended"), Widget.NUMBER, ge=0, le=100)

    @field_validator("sessions_attended")
    @classmethod
    def _not_more_than_planned(cls, value: int | None, info: ValidationInfo) -> int | None:
        planned = info.data.get("sessions_planned")
        if value is not None and planned is not None and value > planned:
            raise PydanticCustomError("more_than_planned", "more than planned")
        return value


class BenefitsAccess(FormModel):
    benefit: str | None = required(
        N_("Benefit"), Widget.CHOICE,
        options=(("adi", N_("Inclusion allowance (ADI)")),
                 ("sfl", N_("Support for training and work (SFL)")),
                 ("naspi", N_("Unemployment benefit (NASpI)")),
                 ("wage_guarantee", N_("Wage-guarantee scheme")), ("other", N_("Other"))),
    )  # fmt: skip
    other_benefit: str | None = field(N_("Which other benefit"), Widget.TEXT)
    application_state: str | None = field(
        N_("Application"), Widget.CHOICE,
        options=(("to_prepare", N_("To prepare")), ("submitted", N_("Submitted")),
                 ("accepted", N_("Accepted")), ("refused", N_("Refused"))),
    )  # fmt: skip
    notes: str | None = field(N_("Notes"), Widget.TEXTAREA)


class JobSearch(FormModel):
    activities: list[str] = field(
        N_("Activities"), Widget.MULTI,
        options=(("cv", N_("Writing the CV")), ("orientation", N_("Career guidance")),
                 ("workshops", N_("Job-search workshops")), ("job_matches", N_("Job matches"))),
    )  # fmt: skip
    job_centre: bool | None = field(N_("Referred to the job centre"), Widget.YES_NO)
    programme_path: str | None = field(
        N_("Programme path at the job centre"), Widget.CHOICE,
        options=(("reentry", N_("Back to work")), ("upskilling", N_("Upskilling")),
                 ("reskilling", N_("Reskilling")), ("inclusion", N_("Work and inclusion")),
                 ("collective", N_("Collective redeployment"))),
    )  # fmt: skip
    notes: str | None = field(N_("Notes"), Widget.TEXTAREA)


class Internship(FormModel):
    promoter: str | None = required(N_("Promoting body"), Widget.TEXT)
    host: str | None = required(N_("Host organisation"), Widget.TEXT)
    promoter_tutor: str | None = field(N_("Tutor of the promoting body"), Widget.TEXT)
    host_tutor: str | None = field(N_("Tutor of the host organisation"), Widget.TEXT)
    hours_per_week: int | None = field(N_("Hours per week"), Widget.NUMBER, ge=1, le=40)
    monthly_allowance: Money = _euros(N_("Gross allowance per month (€)"), needed=True)


@dataclass(frozen=True)
class InterventionType:
    key: Kind
    label: str
    # Paid from one of the program's funds when the plan is approved.
    uses_fund: bool
    # Who usually provides it: a key of `shared.program.ORGANISATIONS`.
    organisation: str
    fields: type[FormModel]
    amount: Callable[[Any, date | None, date | None], int]


def _emergency_amount(details: EmergencySupport, _starts: date | None, _ends: date | None) -> int:
    if details.form == "monthly":
        return (details.monthly_amount or 0) * (details.months or 0)
    if details.form == "one_off":
        return details.one_off_amount or 0
    return 0


def _internship_amount(details: Internship, starts: date | None, ends: date | None) -> int:
    if starts is None or ends is None or details.monthly_allowance is None:
        return 0
    return details.monthly_allowance * months_between(starts, ends)


def _free(_details: Any, _starts: date | None, _ends: date | None) -> int:
    return 0


CATALOG: dict[Kind, InterventionType] = {
    t.key: t
    for t in (
        InterventionType(
            key=Kind.EMERGENCY_SUPPORT,
            label=N_("Emergency economic support"),
            uses_fund=True,
            organisation="farsi_prossimo",
            fields=EmergencySupport,
            amount=_emergency_amount,
        ),
        InterventionType(
            key=Kind.MICROCREDIT,
            label=N_("Support to access microcredit"),
            uses_fund=False,
            organisation="farsi_prossimo",
            fields=Microcredit,
            amount=_free,
        ),
        InterventionType(
            key=Kind.PSYCHOLOGICAL_SUPPORT,
            label=N_("Psychological support"),
            uses_fund=False,
            organisation="cardinal_martini",
            fields=PsychologicalSupport,
            amount=_free,
        ),
        InterventionType(
            key=Kind.BENEFITS,
            label=N_("Access to specific benefits"),
            uses_fund=False,
            organisation="comune",
            fields=BenefitsAccess,
            amount=_free,
        ),
        InterventionType(
            key=Kind.JOB_SEARCH,
            label=N_("Support in active job search"),
            uses_fund=False,
            organisation="csl",
            fields=JobSearch,
            amount=_free,
        ),
        InterventionType(
            key=Kind.INTERNSHIP,
            label=N_("Training internship"),
            uses_fund=True,
            organisation="csl",
            fields=Internship,
            amount=_internship_amount,
        ),
    )
}

MESSAGES = {
    **forms.MESSAGES,
    "microcredit_amount": N_("A social microcredit can be at most 10.000 €."),
    "microcredit_duration": N_("A social microcredit can last at most 60 months."),
    "more_than_planned": N_("More sessions attended than planned."),
}
MISSING = N_("Needed before the plan is submitted.")
ALLOWANCE_BELOW_FLOOR = N_(
    "Below the regional minimum of {floor} a month: check that the host organisation "
    "offers meals or part-time hours that allow it."
)
INTERNSHIP_DURATION = N_(
    "The region expects an internship of 2 to 12 months; this one lasts {months}."
)


def intervention(kind: str) -> InterventionType:
    """The catalog's entry for `kind` (KeyError for a kind that isn't in it)."""
    return CATALOG[Kind(kind)]


def kinds() -> tuple[Kind, ...]:
    return tuple(CATALOG)


def _field_items(kind: str) -> list[tuple[str, FieldInfo]]:
    return list(intervention(kind).fields.model_fields.items())


def parse_details(kind: str, fields: Mapping[str, Sequence[str]], *, prefix: str = "") -> Any:
    """A support's details from submitted inputs (`prefix` + field name); `InvalidInput`."""
    model = intervention(kind).fields
    raw = {
        name: forms.raw_value(info, fields.get(prefix + name, ()))
        for name, info in _field_items(kind)
    }
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(*forms.field_errors(exc, prefix=prefix, messages=MESSAGES)) from None


def load_details(kind: str, stored: Mapping[str, Any]) -> Any:
    """Stored details as the model; values the definition no longer accepts are dropped."""
    model = intervention(kind).fields
    data = dict(stored)
    for _attempt in range(len(data) + 1):
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                if error["loc"]:
                    data.pop(str(error["loc"][0]), None)
    return model()


def stored_details(details: FormModel) -> dict[str, Any]:
    """The details as a JSON document (dates as ISO strings)."""
    return details.model_dump(mode="json")


def amount_cents(kind: str, details: Any, starts_on: date | None, ends_on: date | None) -> int:
    """What the support takes from its fund (0 when it costs the program nothing)."""
    return intervention(kind).amount(details, starts_on, ends_on)


def missing(kind: str, details: Any, *, prefix: str = "") -> dict[str, str]:
    """The required fields left empty: field name → msgid."""
    found = {}
    for name, info in _field_items(kind):
        if forms.meta_of(info).get("required") and getattr(details, name) in (None, [], ""):
            found[prefix + name] = MISSING
    if kind == Kind.EMERGENCY_SUPPORT and isinstance(details, EmergencySupport):
        if details.form == "monthly":
            for name in ("monthly_amount", "months"):
                if getattr(details, name) is None:
                    found[prefix + name] = MISSING
        elif details.form == "one_off" and details.one_off_amount is None:
            found[prefix + "one_off_amount"] = MISSING
    return found


def require_complete(kind: str, details: Any, *, prefix: str = "") -> None:
    found = missing(kind, details, prefix=prefix)
    if found:
        raise IncompletePlan(found)


@dataclass(frozen=True, slots=True)
class Warning:
    field: str
    message: str  # a msgid
    params: Mapping[str, object]


def warnings(
    kind: str,
    details: Any,
    starts_on: date | None,
    ends_on: date | None,
    *,
    internship_floor_cents: int,
    language: str = "it",
    prefix: str = "",
) -> list[Warning]:
    """What the region's guidance would question, for the case worker to confirm."""
    found: list[Warning] = []
    if kind != Kind.INTERNSHIP or not isinstance(details, Internship):
        return found
    allowance = details.monthly_allowance
    if allowance is not None and allowance < internship_floor_cents:
        floor = money.format_euros(internship_floor_cents, language)
        found.append(Warning(prefix + "monthly_allowance", ALLOWANCE_BELOW_FLOOR, {"floor": floor}))
    if starts_on is not None and ends_on is not None:
        months = months_between(starts_on, ends_on)
        low, high = INTERNSHIP_MONTHS
        if not low <= months <= high:
            found.append(Warning(prefix + "dates", INTERNSHIP_DURATION, {"months": months}))
    return found


# --- showing ----------------------------------------------------------------------------


def details_values(
    kind: str, details: Any, *, language: str = "it", prefix: str = ""
) -> dict[str, list[str]]:
    """The details as the strings their inputs show (`prefix` + field name → values)."""
    return {
        prefix + name: forms.submitted_value(info, getattr(details, name), language)
        for name, info in _field_items(kind)
    }


def details_layout(
    kind: str,
    *,
    values: Mapping[str, Sequence[str]],
    errors: Mapping[str, str],
    t: Translator,
    prefix: str = "",
) -> list[FieldView]:
    """The inputs of a support's details, named `prefix` + field, with values and errors."""
    return [
        forms.field_view(
            prefix + name, info, t, values=values.get(prefix + name, ()),
            error=errors.get(prefix + name, ""),
        )
        for name, info in _field_items(kind)
    ]  # fmt: skip


def filled_details(kind: str, details: Any, t: Translator) -> list[tuple[str, str]]:
    """(label, value) of the details that are filled in, for reading and printing."""
    rows = []
    values = details_values(kind, details, language=t.language)
    for name, info in _field_items(kind):
        raw = values[name]
        if not raw:
            continue
        view = forms.field_view(name, info, t)
        if view.widget == Widget.MONEY.value:
            rows.append((view.label, money.format_euros(getattr(details, name), t.language)))
        else:
            rows.append((view.label, forms.shown_value(view, raw)))
    return rows


def field_labels(kind: str) -> list[tuple[str, str]]:
    """(field name, label msgid) in form order: the columns of an export."""
    return [(name, info.title or name) for name, info in _field_items(kind)]
