from tests.dashboard.access import EVERYONE, PUBLIC, Expectations

EXPECTED: Expectations = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): EVERYONE,
    ("GET", "/"): EVERYONE,
    ("GET", "/password"): EVERYONE,
    ("POST", "/password"): EVERYONE,
    ("POST", "/language"): EVERYONE,
    ("GET", "/healthz"): PUBLIC,
}
