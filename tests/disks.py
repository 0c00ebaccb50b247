"""Small file systems to fill up or to mount read-only, for the database's failure paths.

Tests run as root, and root writes files whatever their permissions, so a full disk or a
read-only file is made for real with a tmpfs or a read-only bind mount (mounting needs
root); where mounting is not allowed the test is skipped, or failed under CI.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import missing_component


def _mount(*args: str) -> None:
    mounted = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        missing_component(f"cannot mount a test file system: {mounted.stderr.strip()}")


@contextmanager
def small_disk(mount_point: Path, *, size: str = "1m", inodes: int = 64) -> Iterator[Path]:
    """A tmpfs of its own at `mount_point`, `size` bytes and `inodes` files, to fill up."""
    mount_point.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},nr_inodes={inodes}", "tmpfs", str(mount_point))
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)


@contextmanager
def read_only_file(path: Path) -> Iterator[Path]:
    """`path` made read-only for root too, by bind-mounting it read-only onto itself.

    Its folder stays writable, as for a service user given a file mode 0444: SQLite then
    opens the file read-only (and its -wal and -shm beside it), reads work, writes fail.
    """
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def fill(folder: Path, *, leave: int = 0) -> None:
    """Write zeros into `folder` until its file system is full, then free `leave` bytes."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    if leave:
        os.truncate(filler, max(filler.stat().st_size - leave, 0))


def use_up_inodes(folder: Path) -> None:
    """Create empty files until the file system has no inode left."""
    for n in range(10_000):
        try:
            (folder / f"empty-{n}").touch()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            return
    raise AssertionError("the file system has more inodes than expected")
