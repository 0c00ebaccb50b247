from tests.dashboard.access import COORDINATION, STAFF, Expectations

# Which plans a case worker may see is the plan service's rule (their own cases and the
# unassigned ones): a colleague's plan is a 403 there.
EXPECTED: Expectations = {
    ("GET", "/plans"): STAFF,
    ("GET", "/cases/{case_id}/plan"): STAFF,
    ("GET", "/cases/{case_id}/plan.pdf"): STAFF,
    ("POST", "/cases/{case_id}/plan"): STAFF,
    ("POST", "/cases/{case_id}/plan/start"): STAFF,
    ("POST", "/cases/{case_id}/plan/submit"): STAFF,
    ("POST", "/cases/{case_id}/plan/approve"): COORDINATION,
    ("POST", "/cases/{case_id}/plan/return"): COORDINATION,
    ("POST", "/cases/{case_id}/plan/sign"): STAFF,
    ("POST", "/cases/{case_id}/plan/close"): STAFF,
    ("POST", "/cases/{case_id}/plan/scans"): STAFF,
    ("GET", "/cases/{case_id}/plan/scans/{scan_id}"): STAFF,
}
