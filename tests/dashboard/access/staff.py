from tests.dashboard.access import ADMINISTRATION, Expectations

EXPECTED: Expectations = {
    ("GET", "/staff"): ADMINISTRATION,
    ("GET", "/staff/new"): ADMINISTRATION,
    ("POST", "/staff"): ADMINISTRATION,
    ("GET", "/staff/{user_id}"): ADMINISTRATION,
    ("POST", "/staff/{user_id}/role"): ADMINISTRATION,
    ("POST", "/staff/{user_id}/deactivate"): ADMINISTRATION,
    ("POST", "/staff/{user_id}/reactivate"): ADMINISTRATION,
    ("POST", "/staff/{user_id}/password"): ADMINISTRATION,
}
