"""Append-only log of what staff and the system did to people's data."""
