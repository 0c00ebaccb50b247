"""The interview form: parsing, prefill from the pre-screening, old documents, layout."""

from __future__ import annotations

import pytest

from shared.cases import interview
from shared.cases.errors import InvalidInput
from shared.i18n import Translator
from tests.shared.cases.builders import ANSWERS


def test_prefill_takes_what_the_prescreening_said() -> None:
    form = interview.prefill(ANSWERS | {"urgent": "yes", "benefits": ["naspi", "gone_option"]})
    assert (form.work.situation, form.work.since, form.work.pandemic_related) == (
        "job_loss", "2021-03", "yes",
    )  # fmt: skip
    assert (form.household.members, form.household.minors) == (3, 1)
    assert form.debts.struggling is True
    assert form.notes.needs == ["microcredit", "job_search"]
    # An option no longer in the questionnaire is dropped, the rest kept.
    assert form.benefits.received == []
    assert interview.prefill({}) == interview.InterviewForm()
    assert interview.prefill({"household": "garbage", "urgent": 7}) == interview.InterviewForm()


def test_parse_form_normalises_and_keeps_types() -> None:
    form = interview.parse_form(
        {
            "work.since": ["3/2021"],
            "work.last_job": ["  Magazziniere  "],
            "work.years_worked": ["12"],
            "skills.driving_licence": ["yes"],
            "household.members": ["2"],
            "household.minors": ["1"],
            "household.monthly_income": [""],
            "benefits.received": ["other", "naspi", "naspi"],
            "debts.arrears": ["utilities", "rent"],
            "unknown.field": ["ignored"],
        }
    )
    assert form.work.since == "2021-03"
    assert form.work.last_job == "Magazziniere"
    assert form.work.years_worked == 12
    assert form.skills.driving_licence is True
    assert form.household.monthly_income is None
    assert form.benefits.received == ["naspi", "other"]
    assert form.debts.arrears == ["rent", "utilities"]
    assert interview.parse_form({}) == interview.InterviewForm()


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"household.members": ["1.200"]}, {"household.members"}),
        ({"household.members": ["3"], "household.minors": ["3"]}, {"household.minors"}),
        ({"household.isee": ["-5"]}, {"household.isee"}),
        ({"work.since": ["13/2021"]}, {"work.since"}),
        ({"work.contract": ["<script>"]}, {"work.contract"}),
        ({"benefits.received": ["none", "naspi"]}, {"benefits.received"}),
        ({"skills.driving_licence": ["perhaps"]}, {"skills.driving_licence"}),
        ({"notes.notes": ["x" * 4001]}, {"notes.notes"}),
        (
            {"work.last_job": ["x" * 201], "wellbeing.feeling": ["sad"]},
            {"work.last_job", "wellbeing.feeling"},
        ),
    ],
)
def test_malformed_values_are_refused_by_field(
    fields: dict[str, list[str]], errors: set[str]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        interview.parse_form(fields)
    assert set(caught.value.errors) == errors


def test_an_old_document_loads_without_what_no_longer_fits() -> None:
    stored = interview.form_values(interview.prefill(ANSWERS))
    # Months are shown the way staff type them.
    assert stored["work.since"] == ["03/2021"]
    form = interview.parse_form(stored)
    assert interview.load(form.model_dump(mode="json")) == form
    old = form.model_dump(mode="json")
    old["work"]["contract"] = "option_removed_since"
    old["household"]["members"] = "many"
    old["retired_section"] = {"x": 1}
    loaded = interview.load(old)
    assert loaded.work.contract is None and loaded.household.members is None
    assert loaded.work.situation == "job_loss"
    assert interview.load({"work": "not a section"}) == interview.InterviewForm()


def test_layout_and_filled_are_in_the_readers_language() -> None:
    t = Translator("it")
    form = interview.prefill(ANSWERS)
    sections = interview.layout(
        values=interview.form_values(form),
        errors={"household.minors": "The number must be at most {le}."},
        params={"household.minors": {"le": 19}},
        t=t,
    )
    assert [s.key for s in sections] == [
        "work", "skills", "household", "benefits", "debts", "wellbeing", "notes",
    ]  # fmt: skip
    fields = {f.name: f for s in sections for f in s.fields}
    members = fields["household.members"]
    assert (members.widget, members.value, members.minimum, members.maximum) == (
        "number",
        "3",
        1,
        20,
    )
    assert fields["household.minors"].error.endswith("19.")
    assert fields["household.minors"].error != "The number must be at most 19."
    needs = fields["notes.needs"]
    assert needs.widget == "multi" and needs.values == ("microcredit", "job_search")
    assert len(needs.options) == 7
    assert fields["notes.notes"].rows == 6 and fields["notes.notes"].max_length == 4000
    assert fields["debts.struggling"].options == (("yes", t("yes")), ("no", t("no")))
    shown = dict(interview.filled(form, t))
    assert len(shown) == 5
    work = dict(shown[t("Work history")])
    assert work[t("Since (month and year)")] == "marzo 2021"
