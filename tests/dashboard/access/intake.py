from tests.dashboard.access import STAFF, Expectations

EXPECTED: Expectations = {
    ("GET", "/intake"): STAFF,
    ("POST", "/intake"): STAFF,
    ("GET", "/intake/{citizen_id}"): STAFF,
    ("POST", "/intake/{citizen_id}/booking"): STAFF,
}
