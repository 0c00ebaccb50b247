from tests.dashboard.access import COORDINATION, Expectations

EXPECTED: Expectations = {
    ("GET", "/exports"): COORDINATION,
    ("GET", "/exports/{name}.{fmt}"): COORDINATION,
}
