from tests.dashboard.access import COORDINATION, Expectations

EXPECTED: Expectations = {
    ("GET", "/audit"): COORDINATION,
}
