from tests.dashboard.access import COORDINATION, Expectations

EXPECTED: Expectations = {
    ("GET", "/figures"): COORDINATION,
    ("GET", "/figures/charts.css"): COORDINATION,
    ("POST", "/figures/refresh"): COORDINATION,
}
