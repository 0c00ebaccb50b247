"""The plan as a document to print and sign: every text already in the reader's language.

`build_document` turns a stored plan into a `PlanDocument` of plain strings; the
renderers (the plan page, the PDF) only lay it out. (What the citizen's "I've read it"
acknowledges is the Telegram summary, hashed in no language: `shared.plans.messages`.)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from babel import Locale
from babel.dates import DateTimePattern, parse_pattern

from shared import money, program
from shared.i18n import N_, Translator
from shared.plans import catalog
from shared.plans.models import PlanState, SupportState
from shared.plans.service import PlanRows

TITLE = N_("Individualized Intervention Plan")
PRIVACY_NOTE = N_(
    "The personal data in this plan are processed by the Municipality of Cernusco sul "
    "Naviglio and its partners only to run the Ripartire program, as explained in the "
    "privacy notice the citizen received. They are kept for the time the law requires and "
    "then erased or made anonymous. The citizen may ask to see, correct or erase them."
)
STATE_LABELS = {
    PlanState.DRAFT.value: N_("Draft"),
    PlanState.SUBMITTED.value: N_("Waiting for approval"),
    PlanState.APPROVED.value: N_("Approved, to be signed"),
    PlanState.RETURNED.value: N_("Returned for changes"),
    PlanState.ACTIVE.value: N_("Active"),
    PlanState.CLOSED.value: N_("Closed"),
}
SUPPORT_STATE_LABELS = {
    SupportState.PROPOSED.value: N_("Proposed"),
    SupportState.ACTIVE.value: N_("Active"),
    SupportState.COMPLETED.value: N_("Completed"),
    SupportState.CANCELLED.value: N_("Cancelled"),
}
HEADINGS = {
    "citizen": N_("Citizen"),
    "summary": N_("Situation"),
    "objectives": N_("Objectives and expected results"),
    "commitments": N_("The citizen's commitments"),
    "supports": N_("Supports"),
    "team": N_("Plan team"),
    "review": N_("First review"),
    "privacy": N_("Personal data"),
    "signatures": N_("Signatures"),
    "responsible": N_("Responsible"),
    "period": N_("Period"),
    "amount": N_("Amount"),
    "fund": N_("Fund"),
    "state": N_("State"),
    "version": N_("Version {version} of {date}"),
    "by": N_("by {date}"),
    "signature": N_("Signature"),
    "date": N_("Date"),
    "expected": N_("Expected result"),
}
# Not "The citizen": that msgid is also the catalog's "paid to" option ("Al cittadino").
SIGNERS = (N_("Citizen"), N_("Case worker"), N_("Coordinator"))


@dataclass(frozen=True, slots=True)
class SupportBlock:
    title: str
    state: str
    responsible: str
    period: str
    amount: str | None
    fund: str | None
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class PlanDocument:
    language: str
    title: str
    program: str
    municipality: str
    partners: tuple[str, ...]
    funders: tuple[str, ...]
    version_line: str
    state: str
    citizen_name: str
    citizen_fiscal_code: str | None
    case_reference: str
    summary: str
    objectives: tuple[tuple[str, str], ...]
    commitments: tuple[tuple[str, str], ...]
    supports: tuple[SupportBlock, ...]
    team: tuple[tuple[str, str], ...]
    review_on: str | None
    privacy_note: str
    signers: tuple[tuple[str, str], ...]
    headings: Mapping[str, str]


@functools.cache
def _day_format(language: str) -> tuple[DateTimePattern, Locale]:
    """ "3 dicembre 2026": parsed once per language (Babel parses both on every call)."""
    return parse_pattern("d MMMM y"), Locale.parse(language)


def day(value: date | None, t: Translator) -> str:
    """A day as the plan writes it, "3 dicembre 2026"; "" for none."""
    if value is None:
        return ""
    pattern, locale = _day_format(t.language)
    return str(pattern.apply(value, locale))


def version_line(version: int, dated: date, t: Translator) -> str:
    """ "Version 2 of 3 December 2026": the line under the title, also on the plan page."""
    return t(HEADINGS["version"], version=version, date=day(dated, t))


def build_document(
    *,
    rows: PlanRows,
    citizen_name: str,
    citizen_fiscal_code: str | None,
    case_id: int,
    staff_names: Mapping[int, str],
    fund_names: Mapping[int, str],
    case_worker: str,
    dated: date,
    t: Translator,
) -> PlanDocument:
    """The plan in `t`'s language, ready to print."""
    plan = rows.plan
    blocks = []
    for support in rows.supports:
        if support.state == SupportState.CANCELLED.value:
            continue
        details = catalog.load_details(support.kind, support.details)
        responsible = (
            staff_names.get(support.responsible_id, "")
            if support.responsible_id is not None
            else program.organisation_name(support.organisation or "")
        )
        period = " – ".join(day(d, t) for d in (support.starts_on, support.ends_on) if d)
        blocks.append(
            SupportBlock(
                title=t(catalog.intervention(support.kind).label),
                state=t(SUPPORT_STATE_LABELS[support.state]),
                responsible=responsible,
                period=period,
                amount=money.format_euros(support.amount_cents, t.language)
                if support.amount_cents
                else None,
                fund=fund_names.get(support.fund_id) if support.fund_id is not None else None,
                rows=tuple(catalog.filled_details(support.kind, details, t)),
            )
        )
    members = []
    for member in rows.team:
        name = staff_names.get(member.staff_id, "") if member.staff_id else member.name or ""
        where = program.organisation_name(member.organisation) if member.organisation else ""
        members.append((", ".join(p for p in (name, where) if p), member.role))
    version = plan.version
    return PlanDocument(
        language=t.language,
        title=t(TITLE),
        program=program.PROGRAM,
        municipality=program.MUNICIPALITY,
        partners=tuple(name for key, name in program.ORGANISATIONS if key != "comune"),
        funders=program.FUNDERS,
        version_line=version_line(version, dated, t),
        state=t(STATE_LABELS[plan.state]),
        citizen_name=citizen_name,
        citizen_fiscal_code=citizen_fiscal_code,
        case_reference=t("Case {n}", n=case_id),
        summary=plan.summary,
        objectives=tuple((o.objective, o.expected_result) for o in rows.objectives),
        commitments=tuple(
            (c.what, t(HEADINGS["by"], date=day(c.due_on, t)) if c.due_on else "")
            for c in rows.commitments
        ),
        supports=tuple(blocks),
        team=tuple(members),
        review_on=day(plan.next_review_on, t) or None,
        privacy_note=t(PRIVACY_NOTE),
        signers=tuple(zip((t(s) for s in SIGNERS), (citizen_name, case_worker, ""), strict=True)),
        headings={key: t(text) for key, text in HEADINGS.items()},
    )
