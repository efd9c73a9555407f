"""Sites: where a command must run, from the environment (never the database).

A worker inside a private network can reach what the console cannot. Each target
can name the site whose workers run the commands that use it:

    TARGET_SITE_DATABASE_URL=eu              one variable
    TARGET_SITES=DATABASE_URL=eu,REDIS_URL=eu,api.yomira.app=eu

`TARGET_SITES` also names runbook hosts (a key with a dot, as in TARGET_HOSTS),
for the HTTP and SMTP commands that name a host rather than a variable. A target
named by neither has no site: its commands go to the default queue. A site's
commands go to the Celery queue `site.<name>`, which the workers started with
`WORKER_SITE=<name>` consume (and only they).

Plain Python like probes.targets: the console (queue choice, the warning on the
checklist) and the worker (its own queue) read the same answer."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping

from .binding import CommandLike
from .families import family
from .targets import PREFIX, environ_key, environ_of

SITE_PREFIX = PREFIX + "SITE_"  # TARGET_SITE_<NAME>=<site>
SITES = PREFIX + "SITES"  # TARGET_SITES=<NAME or host>=<site>,...
WORKER_SITE = "WORKER_SITE"  # the site a worker serves
QUEUE_PREFIX = "site."
# A site is part of a queue name and of messages: short, plain, lower case.
SITE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HOST = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:[0-9]+)?")


class SiteConfigError(ValueError):
    """The site settings cannot be read; the message names the variable to fix."""


class SiteConflict(ValueError):
    """A command needs targets at two different sites: no one worker reaches both."""

    def __init__(self, where: dict[str, list[str]]) -> None:
        self.where = where
        parts = "; ".join(
            f"{', '.join(names)} at {_site_label(site)}"
            for site, names in sorted(where.items())
        )
        super().__init__(
            f"This command needs targets at different sites ({parts}): no one worker "
            f"reaches them all. Put them at one site ({SITES} / {SITE_PREFIX}<NAME>)."
        )


def _site_label(site: str) -> str:
    return f"site {site}" if site else "the default site"


def is_site_setting(key: str) -> bool:
    """Whether an environment key is a site setting rather than a target."""
    return key == SITES or key.startswith(SITE_PREFIX)


def clean_site(value: str, variable: str) -> str:
    """A site name as written in `variable`, lower case; SiteConfigError naming
    the variable when it is not a plain short name."""
    site = value.strip().lower()
    if not SITE_NAME.fullmatch(site):
        raise SiteConfigError(
            f"{variable}: {value.strip()!r} is not a site name (letters, digits, "
            "'-' and '_', at most 40, starting with a letter or digit)."
        )
    return site


def site_map(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """{variable name (as in `${NAME}`) or runbook host (lower case): site}, from
    TARGET_SITES and every TARGET_SITE_<NAME>. Refuses (SiteConfigError, naming
    the variable) an entry that is not `key=site`, a key that is neither a
    variable name nor a host, a bad site name, and one key given two sites.

    Of the process's environment: read once per environment (every checklist
    page and step asks, for its cache key), again as soon as a variable is set,
    changed or removed (keyed like redaction's secrets, targets.environ_key)."""
    if environ is None:
        return dict(_site_map_of(environ_key()))
    return _site_map(environ)


@functools.lru_cache(maxsize=4)
def _site_map_of(key: frozenset) -> dict[str, str]:
    return _site_map(environ_of(key))  # copied by the caller: never shared


def _site_map(environ: Mapping[str, str]) -> dict[str, str]:
    found: dict[str, tuple[str, str]] = {}  # key -> (site, where it was set)

    def put(key: str, site: str, where: str) -> None:
        if key in found and found[key][0] != site:
            raise SiteConfigError(
                f"{where}: {key} is at site {site}, but {found[key][1]} puts it at "
                f"site {found[key][0]}."
            )
        found[key] = (site, where)

    for item in environ.get(SITES, "").split(","):
        if not item.strip():
            continue
        key, sep, site = item.partition("=")
        key = key.strip()
        if not sep or not key or not site.strip():
            raise SiteConfigError(
                f"{SITES}: {item.strip()!r} is not NAME=site (for example "
                "DATABASE_URL=eu or api.yomira.app=eu)."
            )
        name = key.removeprefix(PREFIX)
        if VARIABLE.fullmatch(name):
            key = name
        elif HOST.fullmatch(key):
            key = key.lower()
        else:
            raise SiteConfigError(
                f"{SITES}: {key!r} is neither a target variable (DATABASE_URL) nor "
                "a runbook host (api.yomira.app)."
            )
        put(key, clean_site(site, SITES), SITES)
    for variable, value in sorted(environ.items()):
        if not variable.startswith(SITE_PREFIX):
            continue
        name = variable.removeprefix(SITE_PREFIX)
        if not VARIABLE.fullmatch(name):
            raise SiteConfigError(f"{variable}: {name!r} is not a target variable.")
        if not value.strip():
            continue  # set but empty: no site, like unset
        put(name, clean_site(value, variable), variable)
    return {key: site for key, (site, _) in found.items()}


def queue_for(site: str) -> str | None:
    """The Celery queue of a site; None for the default site (the default queue)."""
    return f"{QUEUE_PREFIX}{site}" if site else None


def site_of_queue(queue: str) -> str:
    """The site a queue serves ("" for any other queue: the default site's)."""
    return queue.removeprefix(QUEUE_PREFIX) if queue.startswith(QUEUE_PREFIX) else ""


def worker_site(environ: Mapping[str, str] | None = None) -> str:
    """WORKER_SITE of this worker ("" when unset: the default queue)."""
    environ = os.environ if environ is None else environ
    value = environ.get(WORKER_SITE, "")
    return clean_site(value, WORKER_SITE) if value.strip() else ""


def _needs(command: CommandLike) -> list[str]:
    """What the command reaches: its target variables (as missing_targets lists
    them) and the runbook host it names, if any."""
    needed = list(command.variables)
    if command.executor:
        needed += family(command.executor).targets(command)
    host = (command.spec or {}).get("host")
    if host:
        needed.append(str(host).lower())
    return list(dict.fromkeys(needed))


def sites_of(
    command: CommandLike, environ: Mapping[str, str] | None = None
) -> dict[str, list[str]]:
    """{site: this command's variables or hosts at that site}, leaving out those
    at no site. May raise SiteConfigError."""
    mapping = site_map(environ)
    where: dict[str, list[str]] = {}
    for name in _needs(command) if mapping else []:
        if site := mapping.get(name):
            where.setdefault(site, []).append(name)
    return where


def site_of(command: CommandLike, environ: Mapping[str, str] | None = None) -> str:
    """The site whose workers run this command ("" = the default queue). Targets
    with no site (a token, a host reachable from anywhere) go wherever the others
    go. Raises SiteConflict when two of its targets are at two different sites,
    SiteConfigError when the settings cannot be read."""
    where = sites_of(command, environ)
    if len(where) > 1:
        raise SiteConflict(where)
    return next(iter(where), "")
