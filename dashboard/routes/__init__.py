"""Dashboard routes, one module per area; each route declares its roles with `allow(...)`."""
