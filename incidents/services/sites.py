"""Which Celery queue runs a command, and whether anyone is there to take it.

The site comes from the environment (probes/sites.py); a site's commands go to
its queue `site.<name>`, consumed only by the workers started there. A named site
with no live worker is said before the click (the checklist's warning) and refused
at request time, so nothing waits in a queue nobody reads. The default queue is
not refused here: the console's own worker being down is /health/ready's
`workers`, and a run queued for it waits for it (or the sweeper ends it)."""

from __future__ import annotations

import hashlib

from probes import sites as probe_sites
from probes.binding import CommandLike
from probes.sites import SiteConfigError, SiteConflict

from ..models import Command
from . import workers


def site_of(command: CommandLike) -> str:
    """The command's site ("" = default). Raises SiteConfigError, SiteConflict."""
    return probe_sites.site_of(command)


def _unsendable(command: CommandLike) -> tuple[str, str]:
    """(why the site settings refuse it, the warning of its site with no live
    worker), each "" when it does not apply."""
    try:
        site = site_of(command)
    except (SiteConfigError, SiteConflict) as exc:
        return str(exc), ""
    if not site:
        return "", ""
    status = workers.site_status(site)
    return "", ("" if status.live else status.warning())


def run_problem(command: CommandLike) -> str:
    """Why this command cannot be sent now ("" when it can): the site settings are
    unreadable, its targets are at two sites, or its site has no live worker."""
    refused, down = _unsendable(command)
    if refused or not down:
        return refused
    site = site_of(command)
    return (
        f"Not sent: {down}. Start a worker with WORKER_SITE={site} "
        "there (or run the command by hand). Nothing was queued."
    )


def warning(command: CommandLike) -> str:
    """The checklist's note next to Run ("" when none): the same reasons as
    run_problem, worded for before the click."""
    refused, down = _unsendable(command)
    return refused or (f"{down}." if down else "")


def queue_for(command: CommandLike) -> str | None:
    """The queue to send a run of this command to (None: the default queue). A
    conflict or bad settings were refused at request time; if they appear after
    (the environment changed), the run goes to the default queue, as before sites."""
    try:
        return probe_sites.queue_for(site_of(command))
    except (SiteConfigError, SiteConflict):
        return None


def queue_for_execution(execution_id: int) -> str | None:
    """The queue of a queued execution's command: no query at all when no site is
    configured (the usual single-site console), else one."""
    try:
        if not probe_sites.site_map():
            return None
    except SiteConfigError:
        return None
    command = Command.objects.filter(executions__pk=execution_id).first()
    return queue_for(command) if command is not None else None


def signature() -> str:
    """Changes whenever a site warning on the checklist would (a configured site
    going down or up, or its "last seen" age): part of the cache key of the HTML
    that shows them (incidents/fragments.py). "" when no site is configured."""
    try:
        configured = set(probe_sites.site_map().values())
    except SiteConfigError:
        return "bad-site-settings"  # the warning's text is fixed by the settings
    text = workers.sites_signature(sorted(configured)) if configured else ""
    # A cache key: short, and no spaces (memcached refuses them).
    return hashlib.sha256(text.encode()).hexdigest()[:16] if text else ""


def overview() -> tuple[list[tuple[str, list[str], workers.SiteStatus]], str]:
    """For the targets page: each configured site, the targets at it and whether
    a live worker serves it; or why the site settings cannot be read."""
    try:
        mapping = probe_sites.site_map()
    except SiteConfigError as exc:
        return [], str(exc)
    at: dict[str, list[str]] = {}
    for name, site in mapping.items():
        at.setdefault(site, []).append(name)
    return [
        (site, sorted(names), workers.site_status(site))
        for site, names in sorted(at.items())
    ], ""
