"""Staff accounts of the dashboard: case workers, coordinators, administrators."""
