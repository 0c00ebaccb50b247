from tests.dashboard.access import COORDINATION, Expectations

EXPECTED: Expectations = {
    ("GET", "/bookings/requests"): COORDINATION,
    ("POST", "/bookings/{booking_id}/confirm"): COORDINATION,
    ("GET", "/bookings/{booking_id}/decline"): COORDINATION,
    ("POST", "/bookings/{booking_id}/decline"): COORDINATION,
}
