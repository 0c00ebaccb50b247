from tests.dashboard.access import COORDINATION, Expectations

EXPECTED: Expectations = {
    ("GET", "/schedules"): COORDINATION,
    ("POST", "/schedules/helpdesks"): COORDINATION,
    ("GET", "/schedules/helpdesks/{helpdesk_id}"): COORDINATION,
    ("POST", "/schedules/helpdesks/{helpdesk_id}"): COORDINATION,
    ("POST", "/schedules/helpdesks/{helpdesk_id}/active"): COORDINATION,
    ("GET", "/schedules/helpdesks/{helpdesk_id}/hours"): COORDINATION,
    ("POST", "/schedules/helpdesks/{helpdesk_id}/hours"): COORDINATION,
    ("POST", "/schedules/rules/{rule_id}/end"): COORDINATION,
    ("POST", "/schedules/rules/{rule_id}/delete"): COORDINATION,
    ("GET", "/schedules/helpdesks/{helpdesk_id}/closures"): COORDINATION,
    ("POST", "/schedules/helpdesks/{helpdesk_id}/closures"): COORDINATION,
    ("POST", "/schedules/helpdesks/{helpdesk_id}/extra-openings"): COORDINATION,
    ("POST", "/schedules/closures/{closure_id}/delete"): COORDINATION,
    ("POST", "/schedules/extra-openings/{opening_id}/delete"): COORDINATION,
    ("GET", "/schedules/closures/{closure_id}"): COORDINATION,
    ("GET", "/schedules/helpdesks/{helpdesk_id}/stranded"): COORDINATION,
}
