from tests.dashboard.access import COORDINATION, Expectations

EXPECTED: Expectations = {
    ("GET", "/cases/{case_id}/erase"): COORDINATION,
    ("POST", "/cases/{case_id}/erase"): COORDINATION,
}
