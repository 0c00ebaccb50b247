"""Run every benchmark of this folder on SQLite and, when reachable, PostgreSQL.

    python -m tests.bench [--backend sqlite|postgresql|both] [--only NAME] [--quick] [--profile]

NAME is a benchmark's module without its `bench_` prefix (`availability`, `board`, `bot`,
`dashboard`, `figures`, `inbox`, `instances`, `mixed`, `outbox`, `plan_pdf`, `plans`); every
`bench_*` module of this folder is found and run.

A benchmark creates the fresh migrated databases it needs on each backend: files in a
temporary directory, or `ripartire_bench_<random>` PostgreSQL databases dropped at the end.
The output is a report: the exit status is 0 whether targets pass or fail, 1 if a
benchmark crashed, 2 if PostgreSQL was asked for explicitly and is not reachable.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import pkgutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Protocol, cast

from tests import bench
from tests.bench._support import (
    POSTGRES_ADMIN_URL,
    Backend,
    Databases,
    Options,
    machine_facts,
    postgres_version,
)


class Benchmark(Protocol):
    TITLE: str

    async def run(self, databases: Databases, options: Options) -> None: ...


def benchmarks() -> list[tuple[str, Benchmark]]:
    """The `bench_*` modules of this package, by name."""
    found: list[tuple[str, ModuleType]] = [
        (info.name, importlib.import_module(f"{bench.__name__}.{info.name}"))
        for info in pkgutil.iter_modules(bench.__path__)
        if info.name.startswith("bench_")
    ]
    return [(name, cast(Benchmark, module)) for name, module in sorted(found)]


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql", "both"],
        default="both",
        help="database(s) to run on (default: both; PostgreSQL is skipped if unreachable)",
    )
    parser.add_argument(
        "--only",
        choices=[name.removeprefix("bench_") for name, _ in benchmarks()],
        help="run only this benchmark (default: all of them)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repetitions (availability: still 15 timed per measure)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile breakdown of the call"
    )
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    options = Options(quick=arguments.quick, profile=arguments.profile)
    postgres = await postgres_version()
    backends = [Backend.SQLITE, Backend.POSTGRESQL]
    if arguments.backend != "both":
        backends = [Backend(arguments.backend)]
    if Backend.POSTGRESQL in backends and postgres is None:
        print(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}", file=sys.stderr)
        if arguments.backend == "postgresql":
            return 2
        backends.remove(Backend.POSTGRESQL)

    print("Ripartire benchmarks" + (" (quick)" if options.quick else ""))
    for key, value in machine_facts(postgres):
        print(f"  {key:<11} {value}")
    print(f"  timed reps  {options.repetitions} after {options.warmup} warm-up\n")

    found = [
        (name, benchmark)
        for name, benchmark in benchmarks()
        if arguments.only is None or name == f"bench_{arguments.only}"
    ]
    with tempfile.TemporaryDirectory(prefix="ripartire_bench_") as workdir:
        for backend in backends:
            for name, benchmark in found:
                print(f"=== {benchmark.TITLE} ({name}) on {backend} ===")
                async with Databases(backend, Path(workdir)) as databases:
                    await benchmark.run(databases, options)
                print()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
