from tests.dashboard.access import COORDINATION, STAFF, Expectations

EXPECTED: Expectations = {
    ("GET", "/cases"): STAFF,
    ("GET", "/cases/{case_id}"): STAFF,
    ("POST", "/cases/{case_id}/assign"): STAFF,
    ("POST", "/cases/{case_id}/eligibility"): COORDINATION,
    ("POST", "/cases/{case_id}/close"): STAFF,
    ("GET", "/cases/{case_id}/interview"): STAFF,
    ("POST", "/cases/{case_id}/interview"): STAFF,
    ("POST", "/cases/{case_id}/outcome"): STAFF,
}
