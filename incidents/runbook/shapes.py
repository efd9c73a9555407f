"""The words and heading forms runbooks in the wild use for the same parts.

Possessive quantifiers throughout: tests/test_runbook_linear.py checks every pattern
of the importer for shapes that backtrack on long input."""

from __future__ import annotations

import re

# `## 3. PostgreSQL Down`, `## §3 Title`, `## 🔥 3. Title`, `## Playbook 3: Title`.
PLAYBOOK_HEADING = re.compile(
    r"^(?:[^\w\s§]++\s*+)?(?:(?:playbook|runbook|incident|scenario|section|chapter|part)"
    r"\s++)?(?:§\s*+)?#?(\d{1,3})(?:\s*+[.):\-–—])?\s++(\S.*)$",
    re.I,
)
# A step written as a heading: `### 1. Stop chef`, `### Step 1: ...`, `## Step 2 -
# delete the keys`, `### Option 2: ... (use with caution)`.
STEP_HEADING = re.compile(
    r"^(?:(step|option|phase|stage)\s++#?(\d{1,3})\b\s*+[.):\-–—]?\s*+(.*)"
    r"|(\d{1,3})\s*+[.)]\s++(\S.*))$",
    re.I,
)
# Sections that hold the steps. `Steps` / `Immediate steps` is the Yomira contract;
# the others are what the same section is called elsewhere.
STEPS_SECTION = re.compile(
    r"^(?:immediate\s++steps|steps|mitigation|mitigations|remediation|resolution"
    r"|procedure|procedures|what\s++to\s++do|how\s++to\s++fix|fix|fixes|recovery"
    r"|execution|response|runbook\s++steps|actions\s++to\s++take|solution|workaround)"
    r"\b",
    re.I,
)
YOMIRA_STEPS = re.compile(r"^(immediate\s+)?steps\b", re.I)
DIAGNOSIS_SECTION = re.compile(
    r"^(?:diagnos|investigat|troubleshoot|debug|triage|how\s++to\s++investigate"
    r"|verification|verify|checks?\b|identify)",
    re.I,
)
# Context a responder reads first; named, so the summary does not call them
# "not understood".
CONTEXT_SECTION = re.compile(
    r"^(?:meaning|impact|symptoms?|summary|overview|description|background|context"
    r"|about|alert|alerts|cause|causes|possible\s++causes|notes?|references?|related"
    r"|see\s++also|links?|dashboards?|escalation|escalate|additional\s++(?:context"
    r"|information|resources)|prerequisites?|preparation|prevention|post[- ]incident"
    r"|follow[- ]up|things\s++to\s++look\s++for|details?|purpose|scope|owner|contacts?"
    r"|severity|when\s++to\s++use|signals?|expected\s++behaviou?r|impact\s++when)",
    re.I,
)
# Context only an incident runbook has (a README has an Overview too).
INCIDENT_CONTEXT = re.compile(r"^(?:meaning|impact|symptoms?)\b", re.I)
TOC_HEADING = re.compile(r"^(table\s+of\s+)?contents$", re.I)
# `### CortexIngesterRestarts`, `##### Alert Name: "KubeAPIDown"`.
ALERT_HEADING = re.compile(
    r"^(?:(?i:alert(?:\s*+name)?)\s*+:\s*+)?[\"'`]?(?=[A-Z]*+[a-z])"
    r"([A-Za-z][a-z0-9]*+[A-Z][A-Za-z0-9_:]*+)"
    r"[\"'`]?$"
)
# An alert name as a word: camelCase or PascalCase with an inner capital.
ALERT_IDENT = re.compile(r"^(?=[A-Z]*+[a-z])[A-Za-z][a-z0-9]*+[A-Z][A-Za-z0-9_:]*+$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_:]*+$")


# `Potential resolution steps`, `Manual steps to fix`: the words further in.
STEPS_WORD = re.compile(
    r"\b(?:steps|resolution|remediation|mitigation|procedure|runbook)\b", re.I
)


def section_kind(name: str) -> str:
    """`steps`, `diagnosis`, `context` or `unknown` for a section heading: by its
    first words (`Steps to check` is steps, `Diagnosis steps` diagnosis), then by
    a steps word further in."""
    name = name.strip().strip("*_`:").strip()
    if STEPS_SECTION.match(name):
        return "steps"
    if DIAGNOSIS_SECTION.match(name):
        return "diagnosis"
    if STEPS_WORD.search(name):
        return "steps"
    if CONTEXT_SECTION.match(name):
        return "context"
    return "unknown"


def alert_in_title(title: str, stem: str = "") -> str:
    """The alert name a title heading is (`KubeMacPoolDown [Deprecated]` ->
    `KubeMacPoolDown`); a plain word counts only when it is also the file's name
    (`# Watchdog` in Watchdog.md)."""
    name = title.strip()
    # `KubeMacPoolDown [Deprecated]`, `Watchdog (info)`: a tag after the name.
    for opening, closing in ("[]", "()"):
        if name.endswith(closing) and opening in name:
            name = name[: name.rfind(opening)].strip()
    name = name.strip("`*_\"'")
    if ALERT_IDENT.match(name):
        return name
    if stem and name == stem and IDENT.match(name):
        return name
    return ""
