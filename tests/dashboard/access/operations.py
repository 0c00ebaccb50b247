from tests.dashboard.access import PUBLIC, Expectations

# Probes for the load balancer and the orchestrator: no sign-in, no personal data.
EXPECTED: Expectations = {
    ("GET", "/readyz"): PUBLIC,
}
