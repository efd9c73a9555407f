"""The command families, listed once. A name maps to the package that implements
it and is imported on first use, so a family's client library (boto3, psycopg,
httpx) loads only where it is needed.

To add a family: a folder here with `FAMILY` answering `probes.family.Family`, and
one line below. Nothing else: `Command.executor` is checked against this table (no
migration), and the protocol test runs every member on the family's examples."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from ..family import Family

FAMILIES: dict[str, str] = {
    # Order matters only for recognising text with no program name (a request
    # line, an inline SQL statement): the first family that claims it wins.
    "http": "probes.families.http",
    "sql": "probes.families.sql",
    "redis": "probes.families.redis",
    "migrate": "probes.families.migrate",
    "disk": "probes.families.disk",
    "s3": "probes.families.s3",
    "smtp": "probes.families.smtp",
    "kubectl": "probes.families.kubectl",
}


class UnknownFamily(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no command family named {self.name!r} (known: {', '.join(FAMILIES)})"


@cache
def family(name: str) -> Family:
    if name not in FAMILIES:
        raise UnknownFamily(name)
    return import_module(FAMILIES[name]).FAMILY


def families() -> list[Family]:
    return [family(name) for name in FAMILIES]


@cache
def by_program() -> dict[str, Family]:
    """Shell program -> the family that reads its commands (`curl` -> http)."""
    table: dict[str, Family] = {}
    for each in families():
        for program in each.programs:
            if program in table:
                raise ValueError(
                    f"{program!r} is claimed by both {table[program].name!r} "
                    f"and {each.name!r}"
                )
            table[program] = each
    return table
