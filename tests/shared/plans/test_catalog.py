"""The intervention catalog: each support's fields validated, priced, checked and shown."""

from __future__ import annotations

from datetime import date

import pytest

from shared.i18n import Translator
from shared.plans import catalog
from shared.plans.catalog import Kind
from shared.plans.errors import IncompletePlan, InvalidInput

FLOOR = 500_00


def _parse(which: Kind, /, **values: str | list[str]) -> object:
    fields = {k: v if isinstance(v, list) else [v] for k, v in values.items()}
    return catalog.parse_details(which, fields)


def test_the_six_interventions_of_the_program() -> None:
    assert set(catalog.kinds()) == {
        Kind.EMERGENCY_SUPPORT, Kind.MICROCREDIT, Kind.PSYCHOLOGICAL_SUPPORT,
        Kind.BENEFITS, Kind.JOB_SEARCH, Kind.INTERNSHIP,
    }  # fmt: skip
    # Money from the program's funds: emergency support and internships only.
    assert {k for k in catalog.kinds() if catalog.intervention(k).uses_fund} == {
        Kind.EMERGENCY_SUPPORT, Kind.INTERNSHIP,
    }  # fmt: skip


def test_emergency_support_monthly_costs_amount_times_months() -> None:
    details = _parse(
        Kind.EMERGENCY_SUPPORT, form="monthly", monthly_amount="450,50", months="3",
        purpose=["rent", "utilities"], paid_to="landlord", payee="Immobiliare Naviglio",
    )  # fmt: skip
    assert catalog.amount_cents(Kind.EMERGENCY_SUPPORT, details, None, None) == 3 * 450_50
    one_off = _parse(
        Kind.EMERGENCY_SUPPORT, form="one_off", one_off_amount="1.200", paid_to="citizen"
    )
    assert catalog.amount_cents(Kind.EMERGENCY_SUPPORT, one_off, None, None) == 1_200_00


def test_a_malformed_amount_is_refused_with_a_message_on_its_field() -> None:
    with pytest.raises(InvalidInput) as refused:
        _parse(Kind.EMERGENCY_SUPPORT, form="monthly", monthly_amount="tre euro", months="0")
    assert refused.value.errors == {
        "monthly_amount": "Write an amount in euros, for example 1.234,50.",
        "months": "The number must be at least {ge}.",
    }
    assert refused.value.params["months"] == {"ge": 1}


def test_unknown_options_are_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        _parse(Kind.EMERGENCY_SUPPORT, form="weekly", purpose=["rent", "holidays"])
    assert set(refused.value.errors) == {"form", "purpose"}


@pytest.mark.parametrize(
    ("amount", "months", "refused"),
    [
        ("10.000", "60", set()),
        ("10.000,01", "60", {"amount_requested"}),
        ("5.000", "61", {"duration_months"}),
        ("12.000", "72", {"amount_requested", "duration_months"}),
    ],
)
def test_social_microcredit_within_the_law(amount: str, months: str, refused: set[str]) -> None:
    values = {"credit_type": "social", "amount_requested": amount, "duration_months": months}
    if not refused:
        details = _parse(Kind.MICROCREDIT, **values)
        assert catalog.amount_cents(Kind.MICROCREDIT, details, None, None) == 0  # a loan
        return
    with pytest.raises(InvalidInput) as found:
        _parse(Kind.MICROCREDIT, **values)
    assert set(found.value.errors) == refused
    # A business microcredit has no such limit.
    _parse(Kind.MICROCREDIT, **{**values, "credit_type": "business"})


def test_internship_guidance_warns_but_does_not_refuse() -> None:
    low = _parse(Kind.INTERNSHIP, promoter="CS&L", host="Bar Centrale", monthly_allowance="400")
    found = catalog.warnings(
        Kind.INTERNSHIP, low, date(2026, 1, 1), date(2026, 1, 20), internship_floor_cents=FLOOR
    )
    assert [w.field for w in found] == ["monthly_allowance", "dates"]
    assert found[0].params == {"floor": "500,00\xa0€"}
    assert found[1].params == {"months": 1}
    fine = _parse(Kind.INTERNSHIP, promoter="CS&L", host="Bar Centrale", monthly_allowance="600")
    assert (
        catalog.warnings(
            Kind.INTERNSHIP, fine, date(2026, 1, 1), date(2026, 6, 30), internship_floor_cents=FLOOR
        )
        == []
    )
    # Paid from a fund: the allowance for every month, a started month counted whole.
    assert catalog.amount_cents(Kind.INTERNSHIP, fine, date(2026, 1, 1), date(2026, 6, 30)) == (
        6 * 600_00
    )


def test_what_a_support_needs_before_submission() -> None:
    empty = _parse(Kind.EMERGENCY_SUPPORT, form="monthly")
    assert set(catalog.missing(Kind.EMERGENCY_SUPPORT, empty, prefix="support-0.")) == {
        "support-0.paid_to", "support-0.monthly_amount", "support-0.months",
    }  # fmt: skip
    with pytest.raises(IncompletePlan):
        catalog.require_complete(Kind.PSYCHOLOGICAL_SUPPORT, _parse(Kind.PSYCHOLOGICAL_SUPPORT))
    catalog.require_complete(
        Kind.PSYCHOLOGICAL_SUPPORT, _parse(Kind.PSYCHOLOGICAL_SUPPORT, sessions_planned="8")
    )


def test_more_sessions_attended_than_planned_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        _parse(Kind.PSYCHOLOGICAL_SUPPORT, sessions_planned="4", sessions_attended="5")
    assert refused.value.errors == {"sessions_attended": "More sessions attended than planned."}


def test_stored_details_come_back_and_old_values_are_dropped() -> None:
    details = _parse(
        Kind.INTERNSHIP, promoter="CS&L", host="Bar", monthly_allowance="1.234,50",
        hours_per_week="30",
    )  # fmt: skip
    stored = catalog.stored_details(details)
    assert stored["monthly_allowance"] == 1_234_50
    assert catalog.load_details(Kind.INTERNSHIP, stored) == details
    old = {**stored, "hours_per_week": 90, "retired_field": "x"}
    loaded = catalog.load_details(Kind.INTERNSHIP, old)
    assert loaded.hours_per_week is None  # type: ignore[attr-defined]
    assert loaded.host == "Bar"  # type: ignore[attr-defined]


def test_one_definition_fills_the_form_and_shows_the_support_in_italian() -> None:
    details = _parse(
        Kind.EMERGENCY_SUPPORT, form="monthly", monthly_amount="1234,5", months="2",
        paid_to="utility",
    )  # fmt: skip
    values = catalog.details_values(Kind.EMERGENCY_SUPPORT, details, prefix="support-1.")
    assert values["support-1.monthly_amount"] == ["1.234,50"]
    layout = catalog.details_layout(
        Kind.EMERGENCY_SUPPORT, values=values, errors={}, t=Translator("it"), prefix="support-1."
    )
    amount = next(f for f in layout if f.name == "support-1.monthly_amount")
    assert (amount.widget, amount.value) == ("money", "1.234,50")
    assert amount.label == "Importo mensile (€)"
    shown = dict(catalog.filled_details(Kind.EMERGENCY_SUPPORT, details, Translator("it")))
    assert shown["Importo mensile (€)"] == "1.234,50\xa0€"
    assert shown["Pagato a"] == "Direttamente alla società dei servizi"
