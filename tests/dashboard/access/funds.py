from tests.dashboard.access import COORDINATION, Expectations

EXPECTED: Expectations = {
    ("GET", "/funds"): COORDINATION,
    ("POST", "/funds"): COORDINATION,
    ("GET", "/funds/{fund_id}"): COORDINATION,
    ("POST", "/funds/{fund_id}"): COORDINATION,
    ("POST", "/funds/{fund_id}/deposits"): COORDINATION,
    ("GET", "/plans/supports/{support_id}/payments"): COORDINATION,
    ("POST", "/plans/supports/{support_id}/payments"): COORDINATION,
}
