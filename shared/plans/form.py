"""The plan editor's inputs, read into a typed `PlanInput` (and back, to fill the form).

The editor is one plain HTML form, so it works without JavaScript: every row of a
list is a numbered group of inputs (`objective-0.objective`, `support-2.kind`,
`support-2.monthly_amount`, ...), a row whose inputs are all empty is left out, a row
with `remove` ticked is removed, and an empty row at the end of each list adds one.
Rows carry the id of what they edit, so the service can tell a change from an addition.

Malformed values are collected field by field into one `InvalidInput`, so the form
comes back with a message next to each field and everything else as typed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from shared import forms
from shared.forms import Day
from shared.i18n import N_
from shared.limits import MAX_ID
from shared.plans import catalog
from shared.plans.errors import InvalidInput
from shared.plans.models import SupportState

if TYPE_CHECKING:
    from shared.plans.service import PlanRows
from shared.program import ORGANISATIONS

MAX_SUMMARY = 4000
MAX_ROW_TEXT = 500
MAX_ROLE = 120
MAX_NAME = 120
# More rows than any plan has: a bigger form is refused rather than processed.
MAX_ROWS = 40

LISTS = ("objective", "commitment", "support", "team")
_ROW = re.compile(r"^(objective|commitment|support|team)-(\d{1,3})\.(\w{1,40})$")
_DAY = TypeAdapter(Day)

TOO_LONG = N_("This text is too long: at most {max_length} characters.")
REQUIRED = N_("Fill this in, or empty the whole row to leave it out.")
CHOOSE = N_("Choose one of the options.")
END_BEFORE_START = N_("The end comes before the start.")
TOO_MANY_ROWS = N_("Too many rows: at most {max_rows}.")


@dataclass(frozen=True, slots=True)
class Responsible:
    """A case worker (`staff_id`) or one of the program's organisations (`organisation`)."""

    staff_id: int | None = None
    organisation: str | None = None

    @property
    def key(self) -> str:
        if self.staff_id is not None:
            return f"staff:{self.staff_id}"
        return f"org:{self.organisation}" if self.organisation else ""


@dataclass(frozen=True, slots=True)
class ObjectiveInput:
    id: int | None
    objective: str
    expected_result: str


@dataclass(frozen=True, slots=True)
class CommitmentInput:
    id: int | None
    what: str
    due_on: date | None


@dataclass(frozen=True, slots=True)
class SupportInput:
    id: int | None
    kind: catalog.Kind
    details: Any  # the kind's model from the catalog
    responsible: Responsible
    starts_on: date | None
    ends_on: date | None
    state: SupportState
    fund_id: int | None

    @property
    def amount_cents(self) -> int:
        return catalog.amount_cents(self.kind, self.details, self.starts_on, self.ends_on)


@dataclass(frozen=True, slots=True)
class TeamInput:
    id: int | None
    member: Responsible
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class PlanInput:
    summary: str
    next_review_on: date | None
    objectives: tuple[ObjectiveInput, ...] = ()
    commitments: tuple[CommitmentInput, ...] = ()
    supports: tuple[SupportInput, ...] = ()
    team: tuple[TeamInput, ...] = ()


@dataclass
class _Reader:
    """Collects the errors of every field while the rows are read."""

    fields: Mapping[str, Sequence[str]]
    errors: dict[str, str] = field(default_factory=dict)
    params: dict[str, dict[str, object]] = field(default_factory=dict)

    def text(self, name: str) -> str:
        found = self.fields.get(name, ())
        return found[-1].strip() if found else ""

    def bounded(self, name: str, limit: int, *, needed: bool = False) -> str:
        value = self.text(name)
        if len(value) > limit:
            self.fail(name, TOO_LONG, max_length=limit)
        elif needed and not value:
            self.fail(name, REQUIRED)
        return value[:limit]

    def day(self, name: str) -> date | None:
        value = self.text(name)
        if not value:
            return None
        try:
            return _DAY.validate_python(value)
        except ValidationError:
            self.fail(name, forms.MESSAGES["day"])
            return None

    def row_id(self, name: str) -> int | None:
        value = self.text(name)
        if value.isdigit() and 1 <= int(value) <= MAX_ID:
            return int(value)
        return None

    def responsible(self, name: str) -> Responsible:
        value = self.text(name)
        kind, _, key = value.partition(":")
        if kind == "staff" and key.isdigit() and 1 <= int(key) <= MAX_ID:
            return Responsible(staff_id=int(key))
        if kind == "org" and key in dict(ORGANISATIONS):
            return Responsible(organisation=key)
        if value:
            self.fail(name, CHOOSE)
        return Responsible()

    def fail(self, name: str, message: str, **params: object) -> None:
        self.errors.setdefault(name, message)
        if params:
            self.params[name] = dict(params)


def _row_numbers(fields: Mapping[str, Sequence[str]]) -> dict[str, list[int]]:
    """The numbers of the rows of each list that have at least one value, in order."""
    found: dict[str, set[int]] = {name: set() for name in LISTS}
    for key, values in fields.items():
        match = _ROW.match(key)
        if match is None or match[3] in ("id", "remove"):
            continue
        if any(v.strip() for v in values):
            found[match[1]].add(int(match[2]))
    return {name: sorted(numbers) for name, numbers in found.items()}


def _removed(reader: _Reader, prefix: str) -> bool:
    return reader.text(prefix + "remove") in ("1", "on", "yes")


def parse_plan_form(fields: Mapping[str, Sequence[str]]) -> PlanInput:
    """The editor's inputs as a `PlanInput`; `InvalidInput` lists every malformed field."""
    reader = _Reader(fields)
    rows = _row_numbers(fields)
    for name, numbers in rows.items():
        if len(numbers) > MAX_ROWS:
            reader.fail(f"{name}s", TOO_MANY_ROWS, max_rows=MAX_ROWS)
            rows[name] = numbers[:MAX_ROWS]
    summary = reader.bounded("summary", MAX_SUMMARY)
    next_review_on = reader.day("next_review_on")
    objectives = []
    for n in rows["objective"]:
        p = f"objective-{n}."
        if _removed(reader, p):
            continue
        objectives.append(
            ObjectiveInput(
                id=reader.row_id(p + "id"),
                objective=reader.bounded(p + "objective", MAX_ROW_TEXT, needed=True),
                expected_result=reader.bounded(p + "expected_result", MAX_ROW_TEXT),
            )
        )
    commitments = []
    for n in rows["commitment"]:
        p = f"commitment-{n}."
        if _removed(reader, p):
            continue
        commitments.append(
            CommitmentInput(
                id=reader.row_id(p + "id"),
                what=reader.bounded(p + "what", MAX_ROW_TEXT, needed=True),
                due_on=reader.day(p + "due_on"),
            )
        )
    supports = [
        found
        for n in rows["support"]
        if not _removed(reader, f"support-{n}.")
        and (found := _support(reader, f"support-{n}.")) is not None
    ]
    team = []
    for n in rows["team"]:
        p = f"team-{n}."
        if _removed(reader, p):
            continue
        member = reader.responsible(p + "member")
        name = reader.bounded(p + "name", MAX_NAME)
        if member.staff_id is None and not name:
            reader.fail(p + "name", REQUIRED)
        team.append(
            TeamInput(
                id=reader.row_id(p + "id"),
                member=member,
                name=name,
                role=reader.bounded(p + "role", MAX_ROLE),
            )
        )
    if reader.errors:
        raise InvalidInput(reader.errors, reader.params)
    return PlanInput(
        summary=summary,
        next_review_on=next_review_on,
        objectives=tuple(objectives),
        commitments=tuple(commitments),
        supports=tuple(supports),
        team=tuple(team),
    )


def _support(reader: _Reader, prefix: str) -> SupportInput | None:
    kind_key = reader.text(prefix + "kind")
    if kind_key not in catalog.CATALOG:
        reader.fail(prefix + "kind", CHOOSE)
        return None
    kind = catalog.Kind(kind_key)
    try:
        details = catalog.parse_details(kind, reader.fields, prefix=prefix)
    except InvalidInput as exc:
        for name, message in exc.errors.items():
            reader.fail(name, message, **exc.params.get(name, {}))
        details = catalog.intervention(kind).fields()
    starts_on = reader.day(prefix + "starts_on")
    ends_on = reader.day(prefix + "ends_on")
    if starts_on is not None and ends_on is not None and ends_on < starts_on:
        reader.fail(prefix + "ends_on", END_BEFORE_START)
    state_key = reader.text(prefix + "state") or SupportState.PROPOSED.value
    if state_key not in {s.value for s in SupportState}:
        reader.fail(prefix + "state", CHOOSE)
        state_key = SupportState.PROPOSED.value
    fund = reader.text(prefix + "fund_id")
    fund_id = int(fund) if fund.isdigit() and 1 <= int(fund) <= MAX_ID else None
    if fund and fund_id is None:
        reader.fail(prefix + "fund_id", CHOOSE)
    return SupportInput(
        id=reader.row_id(prefix + "id"),
        kind=kind,
        details=details,
        responsible=reader.responsible(prefix + "responsible"),
        starts_on=starts_on,
        ends_on=ends_on,
        state=SupportState(state_key),
        fund_id=fund_id,
    )


# --- filling the editor ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EditorRows:
    """The numbered rows the editor shows, each list in order; supports with their kind."""

    objectives: tuple[int, ...] = ()
    commitments: tuple[int, ...] = ()
    supports: tuple[tuple[int, catalog.Kind], ...] = ()
    team: tuple[int, ...] = ()

    def adding(self, what: str, kind: catalog.Kind | None = None) -> EditorRows:
        """The same rows and one more, empty, at the end of `what`."""
        numbers = {
            "objective": self.objectives,
            "commitment": self.commitments,
            "support": tuple(n for n, _kind in self.supports),
            "team": self.team,
        }[what]
        new = max(numbers, default=-1) + 1
        if what == "support":
            assert kind is not None
            return dataclasses.replace(self, supports=(*self.supports, (new, kind)))
        if what == "objective":
            return dataclasses.replace(self, objectives=(*numbers, new))
        if what == "commitment":
            return dataclasses.replace(self, commitments=(*numbers, new))
        return dataclasses.replace(self, team=(*numbers, new))


def submitted_rows(fields: Mapping[str, Sequence[str]]) -> EditorRows:
    """The rows of a submitted editor (those with a value), to show it again as typed."""
    rows = _row_numbers(fields)
    supports = []
    for n in rows["support"]:
        found = fields.get(f"support-{n}.kind", ())
        if found and found[-1] in catalog.CATALOG:
            supports.append((n, catalog.Kind(found[-1])))
    return EditorRows(
        objectives=tuple(rows["objective"]),
        commitments=tuple(rows["commitment"]),
        supports=tuple(supports),
        team=tuple(rows["team"]),
    )


def _day_value(value: date | None) -> list[str]:
    return [value.strftime("%d/%m/%Y")] if value else []


def stored_values(rows: PlanRows, language: str) -> tuple[dict[str, list[str]], EditorRows]:
    """The stored plan as the editor's inputs, and its rows."""
    values: dict[str, list[str]] = {
        "summary": [rows.plan.summary],
        "next_review_on": _day_value(rows.plan.next_review_on),
    }
    for n, objective in enumerate(rows.objectives):
        p = f"objective-{n}."
        values |= {p + "id": [str(objective.id)], p + "objective": [objective.objective],
                   p + "expected_result": [objective.expected_result]}  # fmt: skip
    for n, commitment in enumerate(rows.commitments):
        p = f"commitment-{n}."
        values |= {p + "id": [str(commitment.id)], p + "what": [commitment.what],
                   p + "due_on": _day_value(commitment.due_on)}  # fmt: skip
    supports = []
    for n, support in enumerate(rows.supports):
        p = f"support-{n}."
        kind = catalog.Kind(support.kind)
        supports.append((n, kind))
        who = Responsible(support.responsible_id, support.organisation).key
        values |= {
            p + "id": [str(support.id)],
            p + "kind": [kind.value],
            p + "responsible": [who] if who else [],
            p + "starts_on": _day_value(support.starts_on),
            p + "ends_on": _day_value(support.ends_on),
            p + "state": [support.state],
            p + "fund_id": [str(support.fund_id)] if support.fund_id else [],
        }
        details = catalog.load_details(kind, support.details)
        values |= catalog.details_values(kind, details, language=language, prefix=p)
    for n, member in enumerate(rows.team):
        p = f"team-{n}."
        who = Responsible(member.staff_id, member.organisation).key
        values |= {p + "id": [str(member.id)], p + "member": [who] if who else [],
                   p + "name": [member.name or ""], p + "role": [member.role]}  # fmt: skip
    return values, EditorRows(
        objectives=tuple(range(len(rows.objectives))),
        commitments=tuple(range(len(rows.commitments))),
        supports=tuple(supports),
        team=tuple(range(len(rows.team))),
    )
