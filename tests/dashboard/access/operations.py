from tests.dashboard.access import PUBLIC, Expectations

# Probes for the load balancer and the orchestrator: no sign-in, no personal data.
EXPECTED: Expectations = {
    ("GET", "/readyz"): PUBLIC,
    # Not a staff page: loopback clients or the metrics token (tests/dashboard/test_metrics.py);
    # the sweeps' client is on loopback.
    ("GET", "/metrics"): PUBLIC,
}
