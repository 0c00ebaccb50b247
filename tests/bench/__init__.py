"""Benchmarks, run with `make bench` (`python -m tests.bench`); not part of the pytest run.

Each `bench_*.py` module here is one benchmark: a `TITLE` and an `async def run(databases,
options)` that creates and fills the fresh, migrated databases it needs
(`await databases.create()`) and prints its own report. See
`docs/benchmarks.md` for the method and the latest results.
"""
