"""Targets come from the environment, never the database.

`${NAME}` in the runbook is read from `TARGET_NAME` on the worker (so
`${DATABASE_URL}` is `TARGET_DATABASE_URL`, never the console's own database), and
`TARGET_HOSTS` rewrites the runbook's hosts: `api.yomira.app=http://127.0.0.1:8001,...`.
The same runbook then runs against production, staging or a local stand-in.

`psql -h HOST` (or a literal `postgresql://user@HOST/db`) names a database server by
its host, not by a variable: `TARGET_PG_HOSTS` says which target variable each such
host means (`db-primary.internal=PRIMARY_DATABASE_URL,replica.internal:5433=
REPLICA_DATABASE_URL`), and that variable's `TARGET_` value is the connection. It is
read when the command runs, like every other target: recognising a runbook never
reads the environment. A host with no entry is never run against `DATABASE_URL`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
PREFIX = "TARGET_"


class TargetMissing(Exception):
    """A variable the command needs is not configured on this worker."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        env = ", ".join(PREFIX + n for n in names)
        super().__init__(f"Not configured: set {env} in the worker's environment.")


def value(name: str) -> str | None:
    found = os.environ.get(PREFIX + name)
    return found if found else None


def require(name: str) -> str:
    found = value(name)
    if found is None:
        raise TargetMissing([name])
    return found


def missing(names: list[str]) -> list[str]:
    return [n for n in names if value(n) is None]


def simulated() -> frozenset[str]:
    """The TARGET_* names that point at the simulated Yomira stack (runconsole sets
    SANDBOX_TARGETS when it starts it): the console says "drill target" for them."""
    names = os.environ.get("SANDBOX_TARGETS", "").split(",")
    return frozenset(n.strip() for n in names if n.strip())


def host_map() -> dict[str, str]:
    """TARGET_HOSTS as {runbook host: base URL}."""
    mapping: dict[str, str] = {}
    for item in os.environ.get("TARGET_HOSTS", "").split(","):
        host, sep, base = item.strip().partition("=")
        if sep and host.strip() and base.strip():
            mapping[host.strip().lower()] = base.strip().rstrip("/")
    return mapping


def rewrite(url: str) -> str:
    """The URL with its host replaced as TARGET_HOSTS says (unchanged if unmapped)."""
    parts = urlsplit(url)
    base = host_map().get((parts.hostname or "").lower())
    if not base:
        return url
    rest = url[len(f"{parts.scheme}://{parts.netloc}") :]
    return base + rest


PG_HOSTS = "PG_HOSTS"  # read from TARGET_PG_HOSTS
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*+")
# Not secrets: names and hosts. Masking them would blank out the explanations
# that name them.
NOT_SECRET = frozenset({"TARGET_HOSTS", PREFIX + PG_HOSTS})


def pg_host_map() -> dict[str, str]:
    """TARGET_PG_HOSTS as {host or host:port (lower case): variable name}. The name
    is written as in `${NAME}` (a leading `TARGET_` is accepted and dropped)."""
    mapping: dict[str, str] = {}
    for item in os.environ.get(PREFIX + PG_HOSTS, "").split(","):
        host, sep, name = item.strip().partition("=")
        name = name.strip().removeprefix(PREFIX)
        if sep and host.strip() and NAME.fullmatch(name):
            mapping[host.strip().lower()] = name
    return mapping


def pg_variable(host: str, port: str | None = None) -> str | None:
    """The target variable TARGET_PG_HOSTS names for this host (`host:port` first,
    then the host alone), or None when it names none."""
    mapping = pg_host_map()
    host = host.strip().lower()
    if port and (found := mapping.get(f"{host}:{port.strip()}")):
        return found
    return mapping.get(host)


def pg_unmapped(host: str) -> str:
    """What to set for a host TARGET_PG_HOSTS does not name, worded to follow
    "set TARGET_": TargetMissing and missing_targets put that prefix before it."""
    return f'{PG_HOSTS} with an entry "{host}=<NAME>" (and TARGET_<NAME>)'


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Every configured target value, and the passwords inside URL-shaped ones:
    what redaction removes from anything stored or shown. `environ`: the
    environment to read (os.environ when not given)."""
    values: list[str] = []
    for key, val in (os.environ if environ is None else environ).items():
        if not key.startswith(PREFIX) or key in NOT_SECRET or len(val) < 4:
            continue
        if key == PREFIX + "SITES" or key.startswith(PREFIX + "SITE_"):
            continue  # site names (probes/sites.py), shown in warnings: not secrets
        values.append(val)
        if "://" in val:
            parts = urlsplit(val)
            if parts.password and len(parts.password) >= 3:
                values.append(parts.password)
                # A URL's password is percent-encoded; the target may echo it plain.
                values.append(unquote(parts.password))
    return sorted(set(values), key=len, reverse=True)


# The environment as the process holds it: encoded keys and values, read without
# decoding each (os.environ.items() decodes every variable: ~25 us per look here,
# against ~3 us for this). os._Environ keeps it in `_data` on every platform
# CPython supports; `decodekey`/`decodevalue` turn it back into os.environ's view.
_RAW_ENVIRON = getattr(os.environ, "_data", None)


def environ_key() -> frozenset:
    """The whole environment as a hashable key, equal only while no variable has
    been set, changed or removed: what a cache of anything read from the
    environment (redaction's secrets) is keyed on, so a variable set at run time
    is seen at the next look."""
    if _RAW_ENVIRON is None:  # not CPython's os.environ: its decoded items
        return frozenset(os.environ.items())
    return frozenset(_RAW_ENVIRON.items())


def environ_of(key: frozenset) -> dict[str, str]:
    """The environment an environ_key() was taken of, as os.environ shows it."""
    if _RAW_ENVIRON is None:
        return dict(key)
    return {os.environ.decodekey(k): os.environ.decodevalue(v) for k, v in key}
