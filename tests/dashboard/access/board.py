from tests.dashboard.access import COORDINATION, Expectations

# The coordinators' bookings board (dashboard/routes/bookings.py).
EXPECTED: Expectations = {
    ("GET", "/bookings"): COORDINATION,
    ("GET", "/bookings.csv"): COORDINATION,
    ("POST", "/bookings/bulk"): COORDINATION,
}
