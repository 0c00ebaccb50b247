"""Slot generation from rules, closures and extra openings, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from shared.booking.schedule import DayClosure, DayHours, WeeklyHours, generate_slots
from tests.factories import ROME

SUNDAY = 6


def sunday_rule(opens: time = time(9), closes: time = time(11), minutes: int = 30) -> WeeklyHours:
    return WeeklyHours(1, SUNDAY, opens, closes, minutes, 2, date(2026, 1, 1), None)


def local_starts(day: date, **kwargs: object) -> list[str]:
    slots = generate_slots(
        weekly=kwargs.get("weekly", [sunday_rule()]),  # type: ignore[arg-type]
        extra=kwargs.get("extra", []),  # type: ignore[arg-type]
        closures=kwargs.get("closures", []),  # type: ignore[arg-type]
        first_day=day,
        last_day=day,
        tz=ROME,
    )
    return [s.starts_at.astimezone(ROME).strftime("%H:%M") for s in slots]


def test_plain_day() -> None:
    slots = generate_slots(
        weekly=[sunday_rule()], extra=[], closures=[],
        first_day=date(2026, 3, 22), last_day=date(2026, 3, 22), tz=ROME,
    )  # fmt: skip
    assert [s.starts_at for s in slots] == [
        datetime(2026, 3, 22, h, m, tzinfo=UTC) for h, m in ((8, 0), (8, 30), (9, 0), (9, 30))
    ]
    assert all(s.ends_at - s.starts_at == timedelta(minutes=30) for s in slots)
    assert all(s.capacity == 2 for s in slots)


def test_spring_forward_keeps_wall_clock() -> None:
    # 2026-03-29, last Sunday of March: Rome goes from UTC+1 to UTC+2 at 02:00.
    slots = generate_slots(
        weekly=[sunday_rule()], extra=[], closures=[],
        first_day=date(2026, 3, 29), last_day=date(2026, 3, 29), tz=ROME,
    )  # fmt: skip
    assert [s.starts_at.astimezone(ROME).strftime("%H:%M") for s in slots] == [
        "09:00", "09:30", "10:00", "10:30",
    ]  # fmt: skip
    assert slots[0].starts_at == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert slots[-1].ends_at == datetime(2026, 3, 29, 9, 0, tzinfo=UTC)


def test_fall_back_keeps_wall_clock() -> None:
    # 2026-10-25, last Sunday of October: Rome goes from UTC+2 to UTC+1 at 03:00.
    slots = generate_slots(
        weekly=[sunday_rule()], extra=[], closures=[],
        first_day=date(2026, 10, 25), last_day=date(2026, 10, 25), tz=ROME,
    )  # fmt: skip
    assert [s.starts_at.astimezone(ROME).strftime("%H:%M") for s in slots] == [
        "09:00", "09:30", "10:00", "10:30",
    ]  # fmt: skip
    assert slots[0].starts_at == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    # the Saturday before is still summer time
    saturday = generate_slots(
        weekly=[WeeklyHours(1, 5, time(9), time(9, 30), 30, 1, date(2026, 1, 1), None)],
        extra=[], closures=[], first_day=date(2026, 10, 24), last_day=date(2026, 10, 24), tz=ROME,
    )  # fmt: skip
    assert saturday[0].starts_at == datetime(2026, 10, 24, 7, 0, tzinfo=UTC)


def test_a_night_rule_skips_the_missing_hour() -> None:
    # 02:00-03:00 does not exist in Rome on 2026-03-29.
    night = sunday_rule(time(1), time(4), 60)
    assert local_starts(date(2026, 3, 29), weekly=[night]) == ["01:00", "03:00"]
    # and the repeated hour on 2026-10-25 is offered once, at its first occurrence
    assert local_starts(date(2026, 10, 25), weekly=[night]) == ["01:00", "02:00", "03:00"]


def test_only_whole_slots_fit() -> None:
    assert local_starts(date(2026, 3, 22), weekly=[sunday_rule(time(9), time(10, 15), 30)]) == [
        "09:00", "09:30",
    ]  # fmt: skip


def test_validity_period() -> None:
    rule = WeeklyHours(1, SUNDAY, time(9), time(10), 60, 1, date(2026, 3, 15), date(2026, 3, 22))
    days = [date(2026, 3, 8), date(2026, 3, 15), date(2026, 3, 22), date(2026, 3, 29)]
    assert [bool(local_starts(d, weekly=[rule])) for d in days] == [False, True, True, False]


def test_whole_day_and_partial_closures() -> None:
    day = date(2026, 3, 22)
    assert local_starts(day, closures=[DayClosure(1, day, None, None)]) == []
    # 09:45-10:15 overlaps the 09:30 and the 10:00 slots
    assert local_starts(day, closures=[DayClosure(1, day, time(9, 45), time(10, 15))]) == [
        "09:00", "10:30",
    ]  # fmt: skip
    # another helpdesk's closure changes nothing
    assert len(local_starts(day, closures=[DayClosure(2, day, None, None)])) == 4


def test_extra_opening_adds_slots_and_merges_same_start() -> None:
    day = date(2026, 3, 21)  # a Saturday: no weekly rule
    extra = [DayHours(1, day, time(14), time(15), 30, 3)]
    assert local_starts(day, extra=extra) == ["14:00", "14:30"]
    sunday = date(2026, 3, 22)
    overlapping = [DayHours(1, sunday, time(10), time(12), 30, 5)]
    slots = generate_slots(
        weekly=[sunday_rule()], extra=overlapping, closures=[],
        first_day=sunday, last_day=sunday, tz=ROME,
    )  # fmt: skip
    assert [(s.starts_at.astimezone(ROME).strftime("%H:%M"), s.capacity) for s in slots] == [
        ("09:00", 2), ("09:30", 2), ("10:00", 5), ("10:30", 5), ("11:00", 5), ("11:30", 5),
    ]  # fmt: skip


def test_range_over_a_year_is_sorted_and_complete() -> None:
    rules = [WeeklyHours(1, d, time(9), time(13), 30, 2, date(2026, 1, 1), None) for d in range(5)]
    slots = generate_slots(
        weekly=rules, extra=[], closures=[],
        first_day=date(2026, 1, 1), last_day=date(2026, 12, 31), tz=ROME,
    )  # fmt: skip
    weekdays_2026 = sum(1 for n in range(365) if (date(2026, 1, 1) + timedelta(n)).weekday() < 5)
    assert len(slots) == weekdays_2026 * 8
    assert slots == sorted(slots)
    assert all(s.starts_at.astimezone(ROME).hour in range(9, 13) for s in slots)
