"""The staff dashboard (FastAPI + Jinja2) and the `ripartire` command line."""
