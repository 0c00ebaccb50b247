from tests.dashboard.access import STAFF, Expectations

EXPECTED: Expectations = {
    ("GET", "/agenda"): STAFF,
    ("POST", "/agenda/bookings/{booking_id}/attended"): STAFF,
    ("POST", "/agenda/bookings/{booking_id}/no-show"): STAFF,
    ("GET", "/agenda/bookings/{booking_id}/cancel"): STAFF,
    ("POST", "/agenda/bookings/{booking_id}/cancel"): STAFF,
    ("GET", "/agenda/bookings/{booking_id}/move"): STAFF,
    ("POST", "/agenda/bookings/{booking_id}/move"): STAFF,
}
