"""The interview form of SPEC J4 as typed data, validated by pydantic.

Seven sections (work history, skills and education, household and income, current
benefits, debts and urgent expenses, wellbeing, notes), each a pydantic model whose
fields carry their label and widget. The same definition validates the form, renders
it (`layout`), shows a filled interview (`filled`) and is prefilled from the
pre-screening answers (`prefill`), so a new field is one line here and nothing else.
The machinery (fields, widgets, parsing, inputs) is `shared.forms`, which the plan's
intervention catalog uses too; here are the sections and the questionnaire's options.

Every field is optional: a draft can be saved at any point, and only malformed values
(a word in a number, an unknown option, a text too long) are refused. Amounts are whole
euros. Stored as one JSON document (`Interview.answers`); `load` reads an old document
even after the definition changed (values that no longer fit are dropped).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from shared import forms
from shared.cases.errors import InvalidInput
from shared.forms import FieldView, FormModel, Options, Widget
from shared.i18n import N_, Translator
from shared.intake import questionnaire

MAX_EUROS = 10_000_000


def _field(
    label: str,
    widget: Widget,
    *,
    options: Options = (),
    step: str | None = None,
    help: str | None = None,
    rows: int | None = None,
    **constraints: Any,
) -> Any:
    """A form field; `step`: its options are those of this questionnaire step (and it is
    prefilled from its answer)."""
    extra: JsonDict | None = {"step": step} if step is not None else None
    return forms.field(
        label, widget, options=options, help=help, rows=rows, extra=extra, **constraints
    )


def _euros(label: str, *, help: str | None = None) -> Any:
    return _field(label, Widget.NUMBER, ge=0, le=MAX_EUROS, help=help)


_MONTH = re.compile(r"(?:(\d{1,2})\s*[/.\-]\s*(\d{4})|(\d{4})-(\d{1,2}))")


def _month(value: Any) -> Any:
    """ "03/2021", "3-2021" or "2021-03" → "2021-03"."""
    if value is None or not isinstance(value, str):
        return value
    match = _MONTH.fullmatch(value.strip())
    if match is None:
        raise PydanticCustomError("month", "not a month and year")
    month, year = (match[1], match[2]) if match[1] else (match[4], match[3])
    if not 1 <= int(month) <= 12:
        raise PydanticCustomError("month", "not a month and year")
    return f"{int(year):04d}-{int(month):02d}"


Month = Annotated[str | None, BeforeValidator(_month)]


def _step_of(info: FieldInfo) -> str | None:
    step = forms.meta_of(info).get("step")
    return step if isinstance(step, str) else None


def option_keys(info: FieldInfo) -> tuple[str, ...] | None:
    """The keys a choice field accepts (None for fields without options)."""
    step_key = _step_of(info)
    if step_key is not None:
        return questionnaire.step(step_key).option_keys
    options = forms.declared_options(info)
    return tuple(key for key, _text in options) if options else None


def exclusive_keys(info: FieldInfo) -> set[str]:
    """Options that exclude the others ("None", "I don't know yet") of a step's multiple choice."""
    step_key = _step_of(info)
    if step_key is None:
        return set()
    return {option.key for option in questionnaire.step(step_key).options if option.exclusive}


class _Section(FormModel):
    """A section of the interview: options of a questionnaire step where a field says so."""

    @classmethod
    def option_keys(cls, info: FieldInfo) -> tuple[str, ...] | None:
        return option_keys(info)

    @classmethod
    def exclusive_keys(cls, info: FieldInfo) -> set[str]:
        return exclusive_keys(info)


CONTRACTS: Options = (
    ("permanent", N_("Permanent employee")),
    ("fixed_term", N_("Fixed-term employee")),
    ("agency", N_("Agency or seasonal work")),
    ("self_employed", N_("Self-employed (VAT number)")),
    ("informal", N_("Without a contract")),
    ("other", N_("Other")),
)
EDUCATION: Options = (
    ("none", N_("No school certificate")),
    ("primary", N_("Primary school")),
    ("lower_secondary", N_("Lower secondary school (licenza media)")),
    ("vocational", N_("Vocational qualification")),
    ("upper_secondary", N_("Upper secondary diploma")),
    ("degree", N_("University degree")),
    ("postgraduate", N_("Postgraduate degree")),
)
ITALIAN_LEVELS: Options = (
    ("native", N_("Native speaker")),
    ("good", N_("Good")),
    ("basic", N_("Basic")),
    ("none", N_("Does not speak Italian yet")),
)
DIGITAL_SKILLS: Options = (
    ("none", N_("None")),
    ("basic", N_("Basic (phone, messages)")),
    ("good", N_("Good (e-mail, online forms)")),
    ("advanced", N_("Advanced (office software, professional tools)")),
)
HOUSING: Options = (
    ("rent", N_("Rented")),
    ("social_housing", N_("Public housing")),
    ("mortgage", N_("Owned, with a mortgage")),
    ("owned", N_("Owned, no mortgage")),
    ("hosted", N_("Hosted by relatives or friends")),
    ("other", N_("Other")),
)
ARREARS: Options = (
    ("rent", N_("Rent")),
    ("utilities", N_("Utility bills")),
    ("mortgage", N_("Mortgage instalments")),
    ("loans", N_("Loans or instalment purchases")),
    ("taxes", N_("Taxes and fines")),
    ("other", N_("Other")),
)
FEELINGS: Options = (
    ("good", N_("Fairly well")),
    ("tired", N_("Tired or worried")),
    ("struggling", N_("Struggling")),
    ("crisis", N_("In crisis: needs help soon")),
)
SUPPORT_NETWORK: Options = (
    ("strong", N_("Family or friends who help")),
    ("some", N_("Some help, now and then")),
    ("none", N_("Nobody to count on")),
)


class WorkHistory(_Section):
    situation: str | None = _field(N_("Situation"), Widget.CHOICE, step="situation")
    since: Month = _field(
        N_("Since (month and year)"), Widget.MONTH, help=N_("For example 03/2021.")
    )
    pandemic_related: str | None = _field(
        N_("Caused by the pandemic"), Widget.CHOICE, step="pandemic_related"
    )
    last_job: str | None = _field(N_("Last job or activity"), Widget.TEXT)
    employer: str | None = _field(N_("Employer or sector"), Widget.TEXT)
    contract: str | None = _field(N_("Type of contract"), Widget.CHOICE, options=CONTRACTS)
    years_worked: int | None = _field(N_("Years of work experience"), Widget.NUMBER, ge=0, le=60)
    history: str | None = _field(N_("Earlier jobs and how the work ended"), Widget.TEXTAREA)


class SkillsEducation(_Section):
    education: str | None = _field(N_("Education"), Widget.CHOICE, options=EDUCATION)
    qualifications: str | None = _field(
        N_("Qualifications, courses and certificates"), Widget.TEXTAREA
    )
    italian: str | None = _field(N_("Italian"), Widget.CHOICE, options=ITALIAN_LEVELS)
    languages: str | None = _field(N_("Other languages"), Widget.TEXT)
    digital: str | None = _field(N_("Digital skills"), Widget.CHOICE, options=DIGITAL_SKILLS)
    driving_licence: bool | None = _field(N_("Driving licence"), Widget.YES_NO)
    skills: str | None = _field(N_("Skills and the work they are looking for"), Widget.TEXTAREA)


class HouseholdIncome(_Section):
    members: int | None = _field(
        N_("People in the household"), Widget.NUMBER, ge=1, le=20,
        help=N_("The candidate included."),
    )  # fmt: skip
    minors: int | None = _field(N_("Of whom under 18"), Widget.NUMBER, ge=0, le=19)
    housing: str | None = _field(N_("Housing"), Widget.CHOICE, options=HOUSING)
    housing_cost: int | None = _euros(N_("Rent or mortgage per month (€)"))
    monthly_income: int | None = _euros(
        N_("Household income per month (€)"), help=N_("All members, all sources, net.")
    )
    isee: int | None = _euros(
        N_("ISEE indicator (€)"), help=N_("If they have a valid certificate.")
    )
    notes: str | None = _field(N_("Notes on household and income"), Widget.TEXTAREA)


class CurrentBenefits(_Section):
    received: list[str] = _field(N_("Support received"), Widget.MULTI, step="benefits")
    monthly_amount: int | None = _euros(N_("Support received per month (€)"))
    details: str | None = _field(
        N_("Details: amounts, end dates, applications pending"), Widget.TEXTAREA
    )


class DebtsExpenses(_Section):
    struggling: bool | None = _field(N_("Cannot pay rent, bills or food this month"), Widget.YES_NO)
    arrears: list[str] = _field(N_("Payments in arrears"), Widget.MULTI, options=ARREARS)
    total_debt: int | None = _euros(N_("Total debts (€)"))
    eviction_risk: bool | None = _field(
        N_("At risk of eviction or of utilities being cut off"), Widget.YES_NO
    )
    urgent_expenses: str | None = _field(N_("Urgent expenses"), Widget.TEXTAREA)


class Wellbeing(_Section):
    feeling: str | None = _field(N_("How they are feeling"), Widget.CHOICE, options=FEELINGS)
    support_network: str | None = _field(
        N_("People they can count on"), Widget.CHOICE, options=SUPPORT_NETWORK
    )
    health_limits: bool | None = _field(N_("Health problems that limit work"), Widget.YES_NO)
    wants_psychological_support: bool | None = _field(
        N_("Would like psychological support"), Widget.YES_NO
    )
    notes: str | None = _field(N_("Notes on wellbeing"), Widget.TEXTAREA)


class Notes(_Section):
    needs: list[str] = _field(N_("What would help"), Widget.MULTI, step="needs")
    notes: str | None = _field(N_("Free notes"), Widget.TEXTAREA, rows=6)


class InterviewForm(BaseModel):
    """The whole interview; each attribute is one section of the form."""

    model_config = ConfigDict(extra="ignore")

    work: WorkHistory = Field(default_factory=WorkHistory, title=N_("Work history"))
    skills: SkillsEducation = Field(
        default_factory=SkillsEducation, title=N_("Skills and education")
    )
    household: HouseholdIncome = Field(
        default_factory=HouseholdIncome, title=N_("Household and income")
    )
    benefits: CurrentBenefits = Field(default_factory=CurrentBenefits, title=N_("Current benefits"))
    debts: DebtsExpenses = Field(
        default_factory=DebtsExpenses, title=N_("Debts and urgent expenses")
    )
    wellbeing: Wellbeing = Field(default_factory=Wellbeing, title=N_("Wellbeing"))
    notes: Notes = Field(default_factory=Notes, title=N_("Notes"))


def sections() -> Iterator[tuple[str, FieldInfo, type[_Section]]]:
    for key, info in InterviewForm.model_fields.items():
        model = info.annotation
        assert isinstance(model, type)
        assert issubclass(model, _Section)
        yield key, info, model


def _fields() -> Iterator[tuple[str, FieldInfo]]:
    """(form name "section.field", field) for every field, in form order."""
    for key, _info, model in sections():
        for name, info in model.model_fields.items():
            yield f"{key}.{name}", info


# --- reading a submitted form ------------------------------------------------------------

_MESSAGES = {
    **forms.MESSAGES,
    "exclusive": N_("“None” and “I don't know yet” can't go with other answers."),
}
MINORS_EXCEED = N_("There can't be more people under 18 than people in the household minus one.")


def parse_form(fields: Mapping[str, Sequence[str]]) -> InterviewForm:
    """The form from submitted fields ("section.field" → values); `InvalidInput` if malformed."""
    nested: dict[str, dict[str, Any]] = {key: {} for key, _info, _model in sections()}
    for name, info in _fields():
        section, field = name.split(".", 1)
        nested[section][field] = forms.raw_value(info, fields.get(name, ()))
    try:
        form = InterviewForm.model_validate(nested)
    except ValidationError as exc:
        raise InvalidInput(*forms.field_errors(exc, depth=2, messages=_MESSAGES)) from None
    household = form.household
    if (
        household.members is not None
        and household.minors is not None
        and household.minors > household.members - 1
    ):
        raise InvalidInput({"household.minors": MINORS_EXCEED})
    return form


def load(stored: Mapping[str, Any]) -> InterviewForm:
    """A stored document as a form; values the definition no longer accepts are dropped."""
    data: dict[str, Any] = {
        key: dict(value) for key, value in stored.items() if isinstance(value, Mapping)
    }
    for _attempt in range(100):
        try:
            return InterviewForm.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                section, *rest = (str(part) for part in error["loc"])
                if rest and isinstance(data.get(section), dict):
                    data[section].pop(rest[0], None)
                else:
                    data.pop(section, None)
    return InterviewForm()


def prefill(answers: Mapping[str, Any]) -> InterviewForm:
    """A new interview filled in from the pre-screening answers (what they already told us)."""
    household = answers.get("household")
    urgent = answers.get("urgent")
    return load(
        {
            "work": {
                "situation": answers.get("situation"),
                "since": answers.get("since"),
                "pandemic_related": answers.get("pandemic_related"),
            },
            "household": household if isinstance(household, Mapping) else {},
            "benefits": {"received": answers.get("benefits") or []},
            "debts": {"struggling": {"yes": True, "no": False}.get(str(urgent))},
            "notes": {"needs": answers.get("needs") or []},
        }
    )


# --- showing the form and a filled interview -------------------------------------------


def form_values(form: InterviewForm) -> dict[str, list[str]]:
    """The form's values as submitted strings ("section.field" → values), to fill the inputs."""
    return {
        f"{key}.{field}": forms.submitted_value(info, getattr(getattr(form, key), field))
        for key, _info, model in sections()
        for field, info in model.model_fields.items()
    }


@dataclass(frozen=True, slots=True)
class SectionView:
    key: str
    title: str
    fields: tuple[FieldView, ...]


def _step_options(step_key: str, t: Translator) -> tuple[tuple[str, str], ...]:
    return tuple(
        (key, questionnaire.labels(step_key, [key], t.language))
        for key in questionnaire.step(step_key).option_keys
    )


@functools.cache
def _blank_layout(language: str) -> tuple[SectionView, ...]:
    """The form in `language` without values or errors: the same for every case, so made
    once per language (labels, options and bounds come from the models and catalogs)."""
    t = Translator(language)
    views = []
    for key, section_info, model in sections():
        fields = []
        for field, info in model.model_fields.items():
            step_key = _step_of(info)
            options = _step_options(step_key, t) if step_key is not None else None
            fields.append(forms.field_view(f"{key}.{field}", info, t, options=options))
        views.append(SectionView(key, t(section_info.title or key), tuple(fields)))
    return tuple(views)


def layout(
    *,
    values: Mapping[str, Sequence[str]],
    errors: Mapping[str, str],
    params: Mapping[str, Mapping[str, object]],
    t: Translator,
) -> list[SectionView]:
    """Every section and field of the form with its value, options and error message."""
    views = []
    for section in _blank_layout(t.language):
        fields = []
        for blank in section.fields:
            raw = tuple(values.get(blank.name, ()))
            error = errors.get(blank.name)
            fields.append(
                dataclasses.replace(
                    blank,
                    value=raw[-1] if raw else "",
                    values=raw,
                    error=t(error, **params.get(blank.name, {})) if error else "",
                )
                if raw or error
                else blank
            )
        views.append(SectionView(section.key, section.title, tuple(fields)))
    return views


def filled(form: InterviewForm, t: Translator) -> list[tuple[str, list[tuple[str, str]]]]:
    """(section title, [(label, answer)]) for the fields that have an answer, for reading."""
    shown = []
    values = form_values(form)
    for section in _blank_layout(t.language):
        rows = []
        for view in section.fields:
            raw = values.get(view.name)
            if not raw:
                continue
            if view.widget == Widget.MONTH.value:
                month, year = (int(part) for part in raw[-1].split("/"))
                shown_value = questionnaire.month_label(date(year, month, 1), t.language)
            else:
                labels = dict(view.options)
                shown_value = ", ".join(labels.get(v, v) for v in raw)
            rows.append((view.label, shown_value))
        if rows:
            shown.append((section.title, rows))
    return shown
