from tests.dashboard.access import COORDINATION, Expectations

EXPECTED: Expectations = {
    ("GET", "/bookings/{booking_id}/earlier"): COORDINATION,
    ("POST", "/bookings/{booking_id}/earlier"): COORDINATION,
}
