from tests.dashboard.access import STAFF, Expectations

# Reviews and follow-ups are for the staff who work on plans; which plans a case worker
# may review is the plan service's rule (their own cases and the unassigned ones).
EXPECTED: Expectations = {
    ("GET", "/plans/reviews"): STAFF,
    ("GET", "/cases/{case_id}/plan/reviews"): STAFF,
    ("POST", "/cases/{case_id}/plan/reviews"): STAFF,
    ("GET", "/cases/{case_id}/plan/reviews/new"): STAFF,
    ("GET", "/cases/{case_id}/plan/follow-up"): STAFF,
    ("POST", "/cases/{case_id}/plan/follow-up"): STAFF,
}
