"""Which playbook an alert belongs to. First match wins, and the answer says which
rule matched and why (kept on the group and in the incident's opening event):

1. an admin's route (label matchers in priority order);
2. a `playbook` label (slug or number);
3. the alert name against the alerts the current runbook lists; when several
   playbooks share it (`HealthCheckFailing` + `database: error` / `redis: error`),
   the rest of the playbook's alert condition decides: a label or annotation
   that carries it, else the runbook's own read-only health probe, run once;
4. the `runbook_url` annotation against a playbook's anchor, its file (a directory
   import: `.../runbooks/kubernetes/kubepodcrashlooping` finds
   `kubernetes/KubePodCrashLooping.md`, below RUNBOOK_URL_BASE when set) or slug;
5. a metric the playbook's alert condition names, found in the expression of
   the alert's `generatorURL`;
6. otherwise unrouted: a responder picks in the triage list.

Everything here is data from the runbook and the admin's routes: nothing knows
Yomira's playbooks by name."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings

from incidents.models import Command, Playbook

from .models import Route
from .payloads import Alert

# Alertmanager's matcher syntax: name op "value" (quotes optional).
MATCHER = re.compile(
    r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*"""
)
# One matcher between commas or new lines; a quoted value may hold either.
MATCHER_PART = re.compile(r'(?:"(?:[^"\\]|\\.)*"?|[^,\n"])+')
# `key: value` in an alert condition's code spans (`database: error`).
DISCRIMINATOR = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*:\s*([A-Za-z0-9_.-]+)\s*$")
CODE_SPAN = re.compile(r"`([^`]+)`")
METRIC = re.compile(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\s*\{")
# The words in a health check's output: "database": "error", database: error ...
NORMALISE = re.compile(r"[\s\"']+")


class MatcherError(ValueError):
    """A route's matchers that cannot be read: the message says where."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        found = re.fullmatch(self.value, have) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


def parse_matchers(text: str) -> list[Matcher]:
    """`alertname="X", severity=~"crit.*"` (commas or new lines between)."""
    found = []
    for number, part in enumerate(MATCHER_PART.findall(text), start=1):
        if not part.strip():
            continue
        match = MATCHER.fullmatch(part)
        if not match:
            raise MatcherError(
                f'Matcher {number} ({part.strip()[:60]!r}) is not label="value", '
                'label!="value", label=~"regex" or label!~"regex".'
            )
        label, op, value = match.groups()
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise MatcherError(
                    f"Matcher {number}: {value!r} is not a regular expression ({exc})."
                ) from None
        found.append(Matcher(label, op, value))
    if not found:
        raise MatcherError("A route needs at least one matcher.")
    return found


@dataclass
class Routed:
    playbook: Playbook | None
    rule: str  # route, label, alertname, runbook_url, metric, unrouted
    reason: str
    candidates: list[Playbook] = field(default_factory=list)


Prober = Callable[[Command], tuple[bool, str]]


def find_playbook(playbooks: Iterable[Playbook], wanted: str) -> Playbook | None:
    wanted = wanted.strip().lstrip("§").lower()
    for playbook in playbooks:
        if wanted in (playbook.slug.lower(), str(playbook.number)):
            return playbook
    return None


def route(
    alert: Alert,
    playbooks: list[Playbook],
    routes: Iterable[Route] = (),
    prober: Prober | None = None,
) -> Routed:
    for candidate in routes:
        try:
            matchers = parse_matchers(candidate.matchers)
        except MatcherError:
            continue  # the admin form refuses these; an old row is skipped
        if all(m.matches(alert.labels) for m in matchers):
            playbook = find_playbook(playbooks, candidate.playbook)
            if playbook is not None:
                shown = ", ".join(str(m) for m in matchers)
                return Routed(
                    playbook, "route", f"route “{candidate.name}” matched {shown}"
                )

    label = alert.labels.get("playbook", "")
    if label:
        playbook = find_playbook(playbooks, label)
        if playbook is not None:
            return Routed(playbook, "label", f"the alert's playbook label is {label!r}")

    named = [p for p in playbooks if alert.name and alert.name in p.alerts]
    if len(named) == 1:
        return Routed(
            named[0], "alertname", f"§{named[0].number} lists the alert {alert.name}"
        )
    if len(named) > 1:
        return _one_of(alert, named, playbooks, prober)

    url = alert.annotations.get("runbook_url", "")
    if url:
        playbook, path = _by_runbook_url(url, playbooks)
        if playbook is not None:
            at = f"{path} (§{playbook.number})" if path else f"§{playbook.number}"
            return Routed(playbook, "runbook_url", f"its runbook_url points at {at}")

    expression = _expression(alert.generator_url)
    if expression:
        for playbook in playbooks:
            for metric in condition_metrics(playbook.alert_condition):
                if re.search(rf"\b{re.escape(metric)}\b", expression):
                    return Routed(
                        playbook,
                        "metric",
                        f"its expression uses {metric}, which §{playbook.number}'s "
                        "alert condition names",
                    )
    return Routed(
        None, "unrouted", "no route, label, alert name, runbook_url or metric matched"
    )


def discriminators(playbook: Playbook) -> list[tuple[str, str]]:
    """The `key: value` spans of the alert condition (after the alert name)."""
    found = []
    for span in CODE_SPAN.findall(playbook.alert_condition):
        match = DISCRIMINATOR.match(span)
        if match:
            found.append((match.group(1).lower(), match.group(2).lower()))
    return found


def _says(text: str, key: str, value: str) -> bool:
    flat = NORMALISE.sub("", text.lower())
    return f"{key}:{value}" in flat or f"{key}={value}" in flat


def _one_of(
    alert: Alert,
    named: list[Playbook],
    playbooks: list[Playbook],
    prober: Prober | None,
) -> Routed:
    told = {p.pk: discriminators(p) for p in named}
    values = {**alert.labels, **alert.annotations}
    # A label naming the part (component="database") or any label or annotation
    # saying the condition ("database: error").
    by_label = [
        p
        for p in named
        if any(
            key in {v.lower() for v in values.values()}
            or any(_says(v, key, value) for v in values.values())
            for key, value in told[p.pk]
        )
    ]
    if len(by_label) == 1:
        p = by_label[0]
        return Routed(
            p,
            "alertname",
            f"{alert.name} is listed by {len(named)} playbooks; the alert's labels "
            f"say {_shown(told[p.pk])}, which is §{p.number}'s condition",
        )
    probe = health_probe(playbooks) if prober is not None else None
    if probe is not None:
        ok, output = prober(probe)
        by_probe = [p for p in named if any(_says(output, k, v) for k, v in told[p.pk])]
        if len(by_probe) == 1:
            p = by_probe[0]
            return Routed(
                p,
                "health_probe",
                f"{alert.name} is listed by {len(named)} playbooks; the health probe "
                f"`{probe.text[:120]}` reported {_shown(told[p.pk])}",
            )
        heard = "failed" if not ok else "did not single one out"
        why = f"the health probe `{probe.text[:120]}` {heard}"
    else:
        why = "the alert's labels do not say which part, and no health probe ran"
    return Routed(
        None,
        "ambiguous",
        f"{alert.name} is listed by §{', §'.join(str(p.number) for p in named)}; {why}",
        candidates=named,
    )


def _shown(pairs: list[tuple[str, str]]) -> str:
    return " / ".join(f"{k}: {v}" for k, v in pairs) or "nothing"


def health_probe(playbooks: list[Playbook]) -> Command | None:
    """The runbook's own read-only health check: its first HTTP probe with no
    parameter whose URL mentions health."""
    ids = [p.pk for p in playbooks]
    for command in (
        Command.objects.filter(
            playbook_id__in=ids, kind=Command.Kind.PROBE, executor="http"
        )
        .select_related("playbook")
        .order_by("playbook__number", "position")
    ):
        if not command.parameters and "health" in command.text.lower():
            return command
    return None


def _by_runbook_url(url: str, playbooks: list[Playbook]) -> tuple[Playbook | None, str]:
    """The playbook a runbook_url names, and its file when that is how it was
    found: the fragment (an anchor or slug), then the file, then the last part of
    the path as a slug."""
    parts = urlsplit(url)
    fragment = unquote(parts.fragment).lower()
    last = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1]).lower()
    last = re.sub(r"\.md$", "", last)
    for playbook in playbooks:
        anchor = (playbook.anchor or "").lower().lstrip("#")
        if fragment and fragment in (anchor, playbook.slug.lower()):
            return playbook, ""
    if not fragment and (playbook := _by_path(url, playbooks)) is not None:
        return playbook, playbook.path
    for playbook in playbooks:
        if last and last in (playbook.slug.lower(), (playbook.anchor or "").lower()):
            return playbook, ""
    return None, ""


PAGE_SUFFIXES = (".md", ".markdown", ".html", ".htm")
INDEX_PAGES = ("index", "_index", "readme")


def path_key(path: str) -> str:
    """A file or a URL path as pages are served: lower case, no extension, no
    index page (`kubernetes/KubePodCrashLooping.md` -> `kubernetes/kubepodcrashlooping`)."""
    path = unquote(path).strip("/").lower()
    if PurePosixPath(path).suffix in PAGE_SUFFIXES:
        path = path[: -len(PurePosixPath(path).suffix)]
    head, _, tail = path.rpartition("/")
    return head if tail in INDEX_PAGES else path


def _by_path(url: str, playbooks: list[Playbook]) -> Playbook | None:
    """A playbook that is alone in its file (a directory import), by the file's
    path. Below RUNBOOK_URL_BASE the rest of the URL must be that path exactly;
    otherwise the file whose path shares the most trailing parts with the URL's,
    when exactly one does."""
    shared = Counter(p.path for p in playbooks if p.path)
    alone = {path_key(p.path): p for p in playbooks if p.path and shared[p.path] == 1}
    if not alone:
        return None
    base = settings.RUNBOOK_URL_BASE
    if base and url.lower().startswith(base.lower()):
        return alone.get(path_key(urlsplit(url[len(base) :]).path))
    wanted = path_key(urlsplit(url).path).split("/")
    best: Playbook | None = None
    best_parts, tie = 0, False
    for key, playbook in alone.items():
        have = key.split("/")
        n = 0
        while n < min(len(have), len(wanted)) and have[-1 - n] == wanted[-1 - n]:
            n += 1
        if n > best_parts:
            best, best_parts, tie = playbook, n, False
        elif n and n == best_parts:
            tie = True
    return best if best_parts and not tie else None


def _expression(generator_url: str) -> str:
    if not generator_url:
        return ""
    query = parse_qs(urlsplit(generator_url).query)
    return " ".join(
        v for key, values in query.items() if key.endswith("expr") for v in values
    )


def condition_metrics(condition: str) -> list[str]:
    """Metric names the alert condition writes as a selector: `name{...}`."""
    return [m for m in METRIC.findall(condition) if "_" in m]
