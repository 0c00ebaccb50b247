"""A plan's kept changes in words: what changed, from what to what, in the reader's language.

`PlanChange` keeps each changed item's before and after as plain values (`service`'s
snapshots); this turns one change into a title and lines like "Importo: 1.351,50 € →
1.500,00 €", with the catalog's labels for a support's own fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from babel.dates import format_date

from shared import money, program
from shared.i18n import N_, Translator
from shared.plans import catalog, document
from shared.plans.models import PlanChange

TITLES = {
    "summary": N_("Situation"),
    "review": N_("First review"),
    "objective": N_("Objective"),
    "commitment": N_("Commitment"),
    "support": N_("Support"),
    "team": N_("Team member"),
    "state": N_("State"),
}
ADDED = N_("added")
REMOVED = N_("removed")
FIELD_LABELS = {
    "text": N_("Text"),
    "on": N_("Date"),
    "objective": N_("Objective"),
    "expected_result": N_("Expected result"),
    "what": N_("What"),
    "due_on": N_("By"),
    "responsible_id": N_("Responsible"),
    "organisation": N_("Organisation"),
    "starts_on": N_("Starts on"),
    "ends_on": N_("Ends on"),
    "state": N_("State"),
    "fund_id": N_("Fund"),
    "amount_cents": N_("Amount"),
    "staff_id": N_("Member"),
    "name": N_("Name"),
    "role": N_("Part in the plan"),
    "comment": N_("Comment"),
    "version": N_("Version"),
    "signed_on": N_("Date of the signature"),
    "outcome": N_("Outcome"),
}
EMPTY = "—"


@dataclass(frozen=True, slots=True)
class ChangeView:
    title: str
    lines: tuple[str, ...]
    material: bool


def _day(value: Any, t: Translator) -> str:
    if not isinstance(value, str):
        return EMPTY
    try:
        return format_date(date.fromisoformat(value), "d MMM y", locale=t.language)
    except ValueError:
        return value


def _shown(
    name: str,
    value: Any,
    t: Translator,
    staff_names: Mapping[int, str],
    fund_names: Mapping[int, str],
) -> str:
    if value is None or value == "":
        return EMPTY
    if name in ("on", "due_on", "starts_on", "ends_on", "signed_on"):
        return _day(value, t)
    if name == "amount_cents" and isinstance(value, int):
        return money.format_euros(value, t.language)
    if name in ("responsible_id", "staff_id") and isinstance(value, int):
        return staff_names.get(value, EMPTY)
    if name == "fund_id" and isinstance(value, int):
        return fund_names.get(value, EMPTY)
    if name == "organisation" and isinstance(value, str):
        return program.organisation_name(value)
    if name == "state" and isinstance(value, str):
        label = document.STATE_LABELS.get(value) or document.SUPPORT_STATE_LABELS.get(value)
        return t(label) if label else value
    return str(value)


def _detail_lines(
    kind: str, before: Mapping[str, Any], after: Mapping[str, Any], t: Translator
) -> list[str]:
    """The support's own fields that changed, with the catalog's labels and formats."""
    old = dict(catalog.filled_details(kind, catalog.load_details(kind, before), t))
    new = dict(catalog.filled_details(kind, catalog.load_details(kind, after), t))
    return [
        f"{label}: {old.get(label, EMPTY)} → {new.get(label, EMPTY)}"
        for label in dict.fromkeys([*old, *new])
        if old.get(label) != new.get(label)
    ]


def describe(
    change: PlanChange,
    t: Translator,
    *,
    staff_names: Mapping[int, str],
    fund_names: Mapping[int, str],
) -> ChangeView:
    """One kept change as a title and a line per changed value."""
    before, after = change.before or {}, change.after or {}
    title = t(TITLES.get(change.what, change.what))
    if change.what == "support":
        kind = str(after.get("kind") or before.get("kind") or "")
        if kind in catalog.CATALOG:
            title = f"{title}: {t(catalog.intervention(kind).label)}"
    if not before or not after:
        lines: list[str] = [t(ADDED) if not before else t(REMOVED)]
        return ChangeView(title, tuple(lines), change.material)
    lines = []
    for name in dict.fromkeys([*before, *after]):
        if name in ("kind", "details") or before.get(name) == after.get(name):
            continue
        label = t(FIELD_LABELS.get(name, name))
        old = _shown(name, before.get(name), t, staff_names, fund_names)
        new = _shown(name, after.get(name), t, staff_names, fund_names)
        lines.append(f"{label}: {old} → {new}")
    if change.what == "support":
        kind = str(after.get("kind", ""))
        if kind in catalog.CATALOG:
            lines += _detail_lines(kind, before.get("details") or {}, after.get("details") or {}, t)
    return ChangeView(title, tuple(lines), change.material)
