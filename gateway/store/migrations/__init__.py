"""Numbered SQL migrations, `<backend>/NNNN_<what>.sql`: a database records the versions it has applied
and opening a store applies the rest, in order, in one transaction.

0001 is exactly the schema the first release created with `CREATE TABLE IF NOT EXISTS` (and no version
table), so its databases start at version 0 and upgrade in place. Migrations are additive (new tables,
nullable columns) so a replica still on the previous release keeps working during a rolling deploy.
The files ship as package data and are read through importlib.resources, so an installed gateway finds
them as well as a checkout does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Literal

Backend = Literal["sqlite", "postgres"]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@functools.cache
def migrations(backend: Backend) -> tuple[Migration, ...]:
    """Every migration of `backend`, in order; numbered 1..n without gaps (checked, so a misnamed file
    fails at startup rather than being skipped)."""
    found = sorted(
        (
            Migration(int(entry.name.split("_", 1)[0]), entry.name, entry.read_text(encoding="utf-8"))
            for entry in resources.files(__name__).joinpath(backend).iterdir()
            if entry.name.endswith(".sql")
        ),
        key=lambda migration: migration.version,
    )
    if [migration.version for migration in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{backend} migrations must be numbered 1..n: {[m.name for m in found]}")
    return tuple(found)


def pending(backend: Backend, current: int) -> tuple[Migration, ...]:
    """The migrations a database at version `current` still needs (none if it is ahead of this release)."""
    return tuple(migration for migration in migrations(backend) if migration.version > current)
