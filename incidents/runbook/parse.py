"""Markdown runbook -> Runbook dataclasses.

Three shapes are read (see `shapes.py` for the words each section is known by):

- numbered playbooks (the Yomira style): each `## 3. PostgreSQL Down` heading is a
  playbook, with `**Alert:**` / `**Severity:**` lines, context sections, Diagnosis
  and a Steps numbered list;
- one alert per file (prometheus-operator, OpenShift, GitLab): the file is one
  playbook; Meaning/Impact/Symptoms are context, Diagnosis is diagnosis, and the
  steps come from Mitigation/Resolution/Remediation/Procedure/Steps (a numbered list,
  numbered sub-headings, or each block in order), or from numbered chapters;
- alert headings (cortex-mixin, kubernetes-mixin): many `### AlertName` headings,
  each a playbook.

Whatever is read but not understood is listed in `Runbook.not_understood`, never
dropped quietly. Everything is parsed before anything is returned, so a bad file
raises RunbookError (naming the line) and nothing downstream sees half a runbook."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath

from markdown_it.tree import SyntaxTreeNode

from probes import recognise as rec
from probes.binding import Binding
from probes.shell import SQL_STATEMENT_START, Split, split_shell, split_sql

from .frontmatter import blank_html_comments, field_list, front_matter
from .markdown import SQL_FENCES, fence_language, make_markdown
from .severity import level_of as severity_level
from .shapes import (
    ALERT_HEADING,
    INCIDENT_CONTEXT,
    PLAYBOOK_HEADING,
    STEP_HEADING,
    TOC_HEADING,
    alert_in_title,
    section_kind,
)
from .slugs import github_anchor, slugify
from .types import (
    LANGUAGE_MAX,
    PLAYBOOK_ANCHOR_MAX,
    PLAYBOOK_SLUG_MAX,
    PLAYBOOK_TITLE_MAX,
    RUNBOOK_KEY_MAX,
    RUNBOOK_TITLE_MAX,
    RUNBOOK_VERSION_MAX,
    SEVERITY_NOTE_MAX,
    SEVERITY_TEXT_MAX,
    STEP_TITLE_MAX,
    Command,
    NotARunbook,
    Playbook,
    Runbook,
    RunbookError,
    Section,
    Step,
)

# Possessive quantifiers (`*+`, `++`) never give back what they took: where two
# runs of spaces meet, a regex that may split a run either way tries every split of
# a long run before failing (quadratic). Patterns are compiled here, at module
# level, where tests/test_runbook_linear.py checks them all for such shapes.
FIELD_LINE = re.compile(
    r"^\s*+(?:[-*+]\s++)?(?:\*\*|__|\*|_)?\s*+"
    r"(alert\s*+names?|alerts?|severity|priority|escalation|escalate\s+to)"
    r"\s*+(?::\s*+(?:\*\*|__|\*|_)|(?:\*\*|__|\*|_)\s*+:|:)\s*+(.*)$",
    re.I,
)
TABLE_FIELD = re.compile(
    r"^(alert\s*+names?|alerts?|severity|priority|escalation|escalate\s+to)$", re.I
)
# The spaces around an arrow or a separator are stripped from the pieces after the
# split: a pattern that starts with `\s*` rescans a run of spaces from each of its
# characters.
ARROW = re.compile(r"→|->|=>|⇒|➜")
ESCALATION_SEPARATOR = re.compile(r"\+|,|&|\band\b|/")
ALERT_SEPARATOR = re.compile(r",|;|\bor\b|\band\b|/|\|")
SECTION_REF = re.compile(r"§\s*(\d{1,3})")
# `]` is not part of an anchor: a search starting at each `](#` of a long run of
# them would otherwise rescan the rest of the run.
ANCHOR_LINK = re.compile(r"\]\(#([^()\s\]]+)\)")
LINK = re.compile(rf"{SECTION_REF.pattern}|{ANCHOR_LINK.pattern}")
ANCHOR_NUMBER = re.compile(r"^(\d+)-")
BOLD_TITLE = re.compile(r"^(\*\*|__)(.+?)\1\s*+(.*)$")
ALERT_SPAN = re.compile(r"`([^`]+)`")
WORD_END = re.compile(r"[\s—–,+]")
ALERT_CODE = re.compile(r"^[A-Za-z_][A-Za-z0-9_:]*$")
ALERT_WORD = re.compile(r"^[A-Z][a-z0-9]*[A-Z][A-Za-z0-9_]*$")
LIST_MARKER = re.compile(r"^(\s*)(?:\d{1,9}[.)]|[-*+])([ \t]+|$)")
VERSION = re.compile(r"version\W{0,6}\s*v?(\d[\w.+-]*)", re.I)
SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
# A prose step's title: its first sentence, at most this long.
PROSE_TITLE_MAX = 120

SHAPE_NUMBERED = "numbered playbooks"
SHAPE_ONE_ALERT = "one playbook per file"
SHAPE_CHAPTERS = "one playbook per file, numbered chapters as steps"
SHAPE_ALERT_HEADINGS = "alert headings as playbooks"


def _decode(source: str | bytes) -> tuple[str, str]:
    try:
        raw = source.encode("utf-8") if isinstance(source, str) else source
    except UnicodeEncodeError as exc:  # a lone surrogate: text that is not Unicode
        line = source.count("\n", 0, exc.start) + 1
        raise RunbookError(
            f"this text cannot be stored (character U+{ord(source[exc.start]):04X} "
            "is half of a UTF-16 pair)",
            line,
        ) from None
    sha = hashlib.sha256(raw).hexdigest()
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise RunbookError(
            "this is not a Markdown text file (it contains NUL bytes)", line
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RunbookError(
            f"this is not UTF-8 Markdown text (byte 0x{raw[exc.start]:02x} cannot be read)",
            line,
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise RunbookError("the file is empty: a runbook needs '## 1. Title' sections")
    return text, sha


def _walk(node: SyntaxTreeNode) -> Iterator[SyntaxTreeNode]:
    for child in node.children:
        yield child
        yield from _walk(child)


def _line(node: SyntaxTreeNode) -> int:
    return (node.map[0] + 1) if node.map else 1


def _heading_text(node: SyntaxTreeNode) -> str:
    return node.children[0].content.strip() if node.children else ""


def _level(node: SyntaxTreeNode) -> int:
    return int(node.tag[1])


def _fits(
    value: str, limit: int, what: str, line: int, path: str = "", hint: str = ""
) -> None:
    """Refuse a field longer than the column that stores it: the database would
    refuse it mid-import (PostgreSQL enforces lengths), after the dry run said yes."""
    if len(value) > limit:
        raise RunbookError(
            f"{what} is {len(value)} characters long; at most {limit} fit"
            + (f" ({hint})" if hint else ""),
            line,
            path,
        )


def _cell_text(cell: SyntaxTreeNode) -> str:
    return " ".join(
        c.content.strip() for c in cell.children if c.type == "inline"
    ).strip()


PAGE_SUFFIXES = (".md", ".markdown", ".html", ".htm", ".txt")


def _stem(path: str) -> str:
    """`docs/RouterErrorRatioTooHigh.html.md` -> `RouterErrorRatioTooHigh`."""
    name = PurePosixPath(path).name if path else ""
    while (suffix := PurePosixPath(name).suffix.lower()) in PAGE_SUFFIXES and suffix:
        name = name[: -len(suffix)]
    return name


def _title_from_stem(stem: str) -> str:
    """`gitlab-com-is-down` -> `Gitlab com is down` (a file with no title)."""
    words = stem.replace("_", " ").replace("-", " ").split()
    text = " ".join(words)
    return text[:1].upper() + text[1:]


class _Parser:
    def __init__(
        self,
        text: str,
        sha: str,
        *,
        path: str = "",
        severities: Mapping[str, str] | None = None,
        allow_partial: bool = False,
    ) -> None:
        self.sha = sha
        self.path = path
        self.stem = _stem(path)
        self.severities = dict(severities or {})
        self.allow_partial = allow_partial
        lines = text.split("\n")
        try:
            self.meta = front_matter(lines)
        except RunbookError as exc:
            exc.path = path
            raise
        blank_html_comments(lines)
        self.lines = lines
        self.text = "\n".join(lines)
        self.warnings: list[str] = []
        self.not_understood: list[str] = []
        self.root = SyntaxTreeNode(make_markdown().parse(self.text))
        self.numbers: set[int] = set()
        self.anchors: dict[str, int] = {}
        self.severity_lines: dict[int, int] = {}
        # Playbooks whose Diagnosis says something (not only a list of links).
        self.substance: set[int] = set()

    # -- helpers ------------------------------------------------------------------------

    def source(self, nodes: list[SyntaxTreeNode]) -> str:
        mapped = [n for n in nodes if n.map]
        if not mapped:
            return ""
        start, end = mapped[0].map[0], max(n.map[1] for n in mapped)
        return "\n".join(self.lines[start:end]).strip("\n")

    def error(self, message: str, line: int = 1) -> RunbookError:
        return RunbookError(message, line, self.path)

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(f"line {line}: {message}")

    def unclear(self, line: int, message: str) -> None:
        """Read, but not as a runbook part: listed in every import summary."""
        self.not_understood.append(f"{self.path or 'line'}:{line}: {message}")

    def check_fences(self) -> None:
        # Lines of the text, trailing newlines not counted: computed once (it was
        # once per code block, which made 1,000 playbooks take 35 s).
        text_lines = len(self.lines)
        while text_lines > 1 and not self.lines[text_lines - 1]:
            text_lines -= 1
        for node in _walk(self.root):
            if node.type != "fence" or not node.map:
                continue
            last = (
                self.lines[node.map[1] - 1].strip()
                if node.map[1] > node.map[0] + 1
                else ""
            )
            marker = node.markup
            closed = last.startswith(marker[0] * len(marker)) and not last.strip(
                marker[0]
            )
            # The fence runs to the end of the text: closed only if its last line is
            # a closing marker (trailing newlines do not count as lines).
            if node.map[1] >= text_lines and not closed:
                raise self.error(
                    f"the code block opened here with {marker} is never closed",
                    _line(node),
                )

    # -- the document -------------------------------------------------------------------

    def parse(self) -> Runbook:
        self.check_fences()
        blocks = self.root.children
        headings = [(i, n) for i, n in enumerate(blocks) if n.type == "heading"]
        numbered = [
            (i, n) for i, n in headings if PLAYBOOK_HEADING.match(_heading_text(n))
        ]
        shape, title, title_line = "", "", 1
        preamble_nodes: list[SyntaxTreeNode] = []
        sections: list[Section] = []
        playbooks: list[Playbook] = []
        if numbered:
            level = min(_level(n) for _, n in numbered)
            spans = self.spans(blocks, [i for i, n in headings if _level(n) <= level])
            candidates = [
                (h, b)
                for h, b in spans
                if _level(h) == level and PLAYBOOK_HEADING.match(_heading_text(h))
            ]
            if not any(self.looks_like_playbook(h, b) for h, b in candidates):
                # `## 1. Check X` at the file's section level: chapters of one
                # playbook; `### 1.` under a Mitigation section: its steps.
                first_h1 = next((n for _, n in headings if _level(n) == 1), None)
                top = min(
                    (_level(n) for _, n in headings if n is not first_h1), default=level
                )
                shape = SHAPE_CHAPTERS if level <= top else SHAPE_ONE_ALERT
            else:
                shape = SHAPE_NUMBERED
                title, title_line, preamble_nodes, sections, playbooks = self.numbered(
                    blocks, spans, level
                )
        if not shape:
            alert_level = self.alert_heading_level(headings)
            shape = SHAPE_ALERT_HEADINGS if alert_level else SHAPE_ONE_ALERT
            if alert_level:
                title, title_line, preamble_nodes, sections, playbooks = (
                    self.alert_headings(blocks, headings, alert_level)
                )
        if shape in (SHAPE_ONE_ALERT, SHAPE_CHAPTERS):
            title, title_line, preamble_nodes, playbooks = self.single(
                blocks, headings, chapters=shape == SHAPE_CHAPTERS
            )
        self.check_partial(playbooks)
        rec.settle([_binding_view(c) for p in playbooks for c in p.commands])

        preamble = self.source(preamble_nodes)
        version = VERSION.search(preamble)
        if self.meta.get("version") is not None:
            version_text = str(self.meta["version"]).strip()
        else:
            version_text = version.group(1) if version else ""
        title = str(self.meta.get("title") or "").strip() or title or "Runbook"
        _fits(title, RUNBOOK_TITLE_MAX, "the runbook's title", title_line, self.path)
        key = slugify(title)
        if len(key) > RUNBOOK_KEY_MAX:
            raise self.error(
                f"the runbook's title makes a key (slug) of {len(key)} characters; at "
                f"most {RUNBOOK_KEY_MAX} fit (shorten the title)",
                title_line,
            )
        if version_text:
            line = 1
            if version and preamble_nodes:
                first = next(n for n in preamble_nodes if n.map)
                line = _line(first) + preamble.count("\n", 0, version.start())
            _fits(
                version_text,
                RUNBOOK_VERSION_MAX,
                "the runbook's version",
                line,
                self.path,
            )
        return Runbook(
            title=title,
            version=version_text,
            sha256=self.sha,
            preamble=preamble,
            sections=sections,
            playbooks=playbooks,
            warnings=self.warnings,
            not_understood=self.not_understood,
            shape=shape,
        )

    def spans(
        self, blocks: list[SyntaxTreeNode], starts: list[int]
    ) -> list[tuple[SyntaxTreeNode, list[SyntaxTreeNode]]]:
        out = []
        for pos, start in enumerate(starts):
            end = starts[pos + 1] if pos + 1 < len(starts) else len(blocks)
            out.append((blocks[start], blocks[start + 1 : end]))
        return out

    def looks_like_playbook(
        self, head: SyntaxTreeNode, body: list[SyntaxTreeNode]
    ) -> bool:
        """A numbered heading is a playbook when it has an alert or a severity line,
        or a Steps section; `## 1. Check the logs` with none of them is a chapter."""
        for node in body:
            if node.type == "heading":
                if _level(node) > _level(head) and section_kind(
                    _heading_text(node)
                ) in ("steps", "diagnosis"):
                    return True
                continue
            if node.type in ("paragraph", "bullet_list", "table") and any(
                FIELD_LINE.match(ln) for ln in self.source([node]).split("\n")
            ):
                return True
        return False

    # -- shape: numbered playbooks ------------------------------------------------------

    def numbered(
        self,
        blocks: list[SyntaxTreeNode],
        spans: list[tuple[SyntaxTreeNode, list[SyntaxTreeNode]]],
        level: int,
    ) -> tuple[str, int, list[SyntaxTreeNode], list[Section], list[Playbook]]:
        title, title_line, preamble_nodes = "", 1, []
        runbook_sections: list[Section] = []
        playbook_spans: list[tuple[SyntaxTreeNode, list[SyntaxTreeNode]]] = []
        first = blocks.index(spans[0][0])
        for node in blocks[:first]:
            if node.type == "heading" and _level(node) == 1 and not title:
                title, title_line = _heading_text(node), _line(node)
            else:
                preamble_nodes.append(node)
        for head, body in spans:
            text = _heading_text(head)
            if _level(head) == level and PLAYBOOK_HEADING.match(text):
                if self.looks_like_playbook(head, body):
                    playbook_spans.append((head, list(body)))
                else:
                    self.unclear(
                        _line(head),
                        f"'{text}' is numbered like a playbook but has no alert, "
                        "severity or Steps section: kept as a section of the runbook, "
                        "not a playbook",
                    )
                    runbook_sections.append(
                        Section(text, self.source(body), _line(head))
                    )
            elif (
                _level(head) == level
                and playbook_spans
                and section_kind(text) in ("steps", "diagnosis", "context")
            ):
                # `## Steps` at the playbook's own heading level: it belongs to the
                # playbook above it.
                self.unclear(
                    _line(head),
                    f"'{text}' is at the same heading level as the playbooks: read "
                    f"as part of the playbook above it ('{_heading_text(playbook_spans[-1][0])}')",
                )
                playbook_spans[-1][1].extend([head, *body])
            elif _level(head) == 1 and not title:
                title, title_line = text, _line(head)
                preamble_nodes.extend(body)
            elif TOC_HEADING.match(text):
                continue  # navigation, rebuilt by the console itself
            else:
                runbook_sections.append(Section(text, self.source(body), _line(head)))

        for head, _ in playbook_spans:
            number = int(PLAYBOOK_HEADING.match(_heading_text(head)).group(1))
            if number in self.numbers:
                raise self.error(f"playbook number {number} is used twice", _line(head))
            self.numbers.add(number)
            self.anchors[github_anchor(_heading_text(head))] = number

        playbooks = []
        for head, body in playbook_spans:
            heading = _heading_text(head)
            m = PLAYBOOK_HEADING.match(heading)
            playbooks.append(
                self.playbook(
                    int(m.group(1)),
                    m.group(2).strip(),
                    heading,
                    _line(head),
                    body,
                    _level(head),
                    strict=True,
                )
            )
        self.unique_slugs(playbooks)
        return title, title_line, preamble_nodes, runbook_sections, playbooks

    def unique_slugs(self, playbooks: list[Playbook]) -> None:
        slugs: dict[str, Playbook] = {}
        for playbook in playbooks:
            if playbook.slug in slugs:
                raise self.error(
                    f"playbook {playbook.number} has the same title (slug "
                    f"'{playbook.slug}') as playbook {slugs[playbook.slug].number}",
                    playbook.line,
                )
            slugs[playbook.slug] = playbook

    # -- shape: alert headings ----------------------------------------------------------

    def alert_heading_level(self, headings: list[tuple[int, SyntaxTreeNode]]) -> int:
        """The heading level at which at least two headings are alert names
        (`### CortexIngesterRestarts`), or 0."""
        counts: dict[int, int] = {}
        for _, node in headings:
            if ALERT_HEADING.match(_heading_text(node)):
                counts[_level(node)] = counts.get(_level(node), 0) + 1
        best = max(counts.items(), key=lambda kv: (kv[1], -kv[0]), default=(0, 0))
        return best[0] if best[1] >= 2 else 0

    def alert_headings(
        self,
        blocks: list[SyntaxTreeNode],
        headings: list[tuple[int, SyntaxTreeNode]],
        level: int,
    ) -> tuple[str, int, list[SyntaxTreeNode], list[Section], list[Playbook]]:
        starts = [i for i, n in headings if _level(n) <= level]
        title, title_line = "", 1
        preamble_nodes = list(blocks[: starts[0]])
        sections: list[Section] = []
        playbooks: list[Playbook] = []
        for head, body in self.spans(blocks, starts):
            text = _heading_text(head)
            m = ALERT_HEADING.match(text) if _level(head) == level else None
            if m:
                number = len(playbooks) + 1
                self.numbers.add(number)
                playbook = self.playbook(
                    number, m.group(1), text, _line(head), body, level, strict=False
                )
                if m.group(1) not in playbook.alerts:
                    playbook.alerts.insert(0, m.group(1))
                taken = sum(p.alerts[:1] == [m.group(1)] for p in playbooks)
                if taken:  # kubernetes-mixin lists an alert once per severity
                    playbook.slug = f"{playbook.slug}-{taken + 1}"
                    self.unclear(
                        _line(head),
                        f"the alert '{m.group(1)}' has another entry above: read as a "
                        f"playbook of its own (slug '{playbook.slug}')",
                    )
                playbooks.append(playbook)
            elif _level(head) == 1 and not title:
                title, title_line = text, _line(head)
                preamble_nodes.extend(body)
            elif TOC_HEADING.match(text) or not self.source(body).strip():
                continue  # navigation, or a group heading with nothing of its own
            else:
                if _level(head) == level:
                    self.unclear(
                        _line(head),
                        f"'{text}' is not an alert name: kept as a section of the "
                        "runbook, not a playbook",
                    )
                sections.append(Section(text, self.source(body), _line(head)))
        self.unique_slugs(playbooks)
        return title, title_line, preamble_nodes, sections, playbooks

    # -- shape: one playbook per file ---------------------------------------------------

    def single(
        self,
        blocks: list[SyntaxTreeNode],
        headings: list[tuple[int, SyntaxTreeNode]],
        *,
        chapters: bool,
    ) -> tuple[str, int, list[SyntaxTreeNode], list[Playbook]]:
        """The whole file is one playbook. Its title: the front matter's, else the
        H1, else a first heading that is not a section name, else the file name."""
        title_node = next((n for _, n in headings if _level(n) == 1), None)
        # With a title in the front matter, a first `##` heading is a section.
        if title_node is None and headings and not self.meta.get("title"):
            first = headings[0][1]
            text = _heading_text(first)
            if (
                section_kind(text) == "unknown"
                and not PLAYBOOK_HEADING.match(text)
                and not STEP_HEADING.match(text)
            ):
                title_node = first
        heading_title = _heading_text(title_node) if title_node is not None else ""
        title = str(self.meta.get("title") or "").strip() or heading_title
        if not title:
            title = _title_from_stem(self.stem)
        line = _line(title_node) if title_node is not None else 1
        if title_node is not None:
            at = blocks.index(title_node)
            preamble_nodes, body = list(blocks[:at]), list(blocks[at + 1 :])
            own_level = _level(title_node)
        else:
            preamble_nodes, body, own_level = [], list(blocks), 0
        # Where a refusal points: the title, else the first heading.
        where = (
            line if title_node is not None or not headings else _line(headings[0][1])
        )
        title = title or "Runbook"
        playbook = self.playbook(
            1,
            title,
            heading_title or title,
            line,
            body,
            own_level,
            strict=False,
            chapters=chapters,
            whole_file=True,
        )
        self.numbers.add(1)
        if not playbook.alerts:
            # The H1 (`# Watchdog` in Watchdog.md counts), else a file name that
            # is an alert name (`KubePodCrashLooping.md`).
            named = alert_in_title(heading_title, self.stem) or alert_in_title(
                self.stem
            )
            if named:
                playbook.alerts = [named]
        if not (
            playbook.alerts
            or playbook.steps
            or id(playbook) in self.substance
            or playbook.commands
            or any(INCIDENT_CONTEXT.match(s.title) for s in playbook.context)
        ):
            raise NotARunbook(
                "not a runbook: no numbered playbooks ('## 1. Title'), no alert name, "
                "no Meaning, Impact, Symptoms, Diagnosis, Mitigation or Steps section "
                "and no commands (an index page, a README or a template?)",
                where,
                self.path,
            )
        return title, line, preamble_nodes, [playbook]

    # -- one playbook -------------------------------------------------------------------

    def playbook(
        self,
        number: int,
        title: str,
        heading: str,
        line: int,
        body: list[SyntaxTreeNode],
        own_level: int,
        *,
        strict: bool,
        chapters: bool = False,
        whole_file: bool = False,
    ) -> Playbook:
        playbook = Playbook(
            number=number,
            title=title,
            slug=slugify(title) or f"playbook-{number}",
            anchor=github_anchor(heading),
            line=line,
            path=self.path,
        )
        what = f"playbook {number}"
        _fits(title, PLAYBOOK_TITLE_MAX, f"the title of {what}", line, self.path)
        _fits(
            playbook.slug,
            PLAYBOOK_SLUG_MAX,
            f"the slug of {what}",
            line,
            self.path,
            "the slug is the title in lower case with dashes; shorten the title",
        )
        _fits(
            playbook.anchor,
            PLAYBOOK_ANCHOR_MAX,
            f"the link anchor of {what}",
            line,
            self.path,
            "the anchor is the heading with dashes for spaces; shorten the title",
        )
        if whole_file:  # front matter describes a file that is one playbook
            self.front_matter_fields(playbook)
        # Sections start at the shallowest heading in the body (at the playbook's
        # own level only in a near miss the caller has reported).
        levels = [_level(n) for n in body if n.type == "heading"]
        sub = min(levels) if levels else own_level + 1
        header: list[SyntaxTreeNode] = []
        sections: list[tuple[SyntaxTreeNode, list[SyntaxTreeNode]]] = []
        for node in body:
            if node.type == "heading" and _level(node) <= sub:
                sections.append((node, []))
            elif sections:
                sections[-1][1].append(node)
            else:
                header.append(node)
        self.header(playbook, header)
        last_chapter = 0
        for sub_head, nodes in sections:
            name = _heading_text(sub_head)
            kind = section_kind(name)
            chapter = STEP_HEADING.match(name) or (
                PLAYBOOK_HEADING.match(name) if chapters else None
            )
            if chapter:
                written = int(next(g for g in chapter.groups() if g and g.isdigit()))
                if last_chapter and written != last_chapter + 1:
                    self.unclear(
                        _line(sub_head),
                        f"step numbers jump from {last_chapter} to {written}: read as "
                        f"step {len(playbook.steps) + 1} (is a step missing?)",
                    )
                last_chapter = written
                playbook.steps.append(
                    self.heading_step(
                        playbook, len(playbook.steps) + 1, sub_head, nodes
                    )
                )
            elif kind == "steps":
                self.steps(playbook, sub_head, nodes, strict=strict)
            elif kind == "unknown" and not strict and self.has_step_headings(nodes):
                self.unclear(
                    _line(sub_head),
                    f"section '{name}' of '{title}' has numbered step headings: read "
                    "as steps",
                )
                self.steps(playbook, sub_head, nodes, strict=False)
            elif kind == "diagnosis":
                text = self.source(nodes)
                if playbook.diagnosis:  # a second one keeps its own heading
                    text = f"#### {name}\n\n{text}"
                playbook.diagnosis = "\n\n".join(
                    filter(None, [playbook.diagnosis, text])
                )
                playbook.diagnosis_commands += self.commands(nodes)
                self.fields_in(playbook, nodes)
                if any(
                    n.type != "heading"
                    and not (n.type == "bullet_list" and self.links_only(n))
                    for n in nodes
                ):
                    self.substance.add(id(playbook))
            else:
                if kind == "unknown":
                    self.unclear(
                        _line(sub_head),
                        f"section '{name}' of '{title}' is not one the console knows "
                        "(Meaning, Impact, Symptoms, Diagnosis, Mitigation, Steps...): "
                        "shown as context",
                    )
                self.fields_in(playbook, nodes)
                playbook.context.append(
                    Section(name, self.source(nodes), _line(sub_head))
                )
        if not playbook.steps and strict:
            self.warn(playbook.line, f"playbook {number} has no 'Steps' section")
        self.check_severity(playbook)
        return playbook

    def front_matter_fields(self, playbook: Playbook) -> None:
        meta = self.meta
        for key in ("alert", "alerts", "alertname", "alert_name", "aliases"):
            for name in field_list(meta.get(key)):
                if ALERT_CODE.match(name) and name not in playbook.alerts:
                    playbook.alerts.append(name)
        severity = meta.get("severity") or meta.get("priority")
        if severity is not None:
            self.severity(playbook, str(severity), 1)

    def fields_in(self, playbook: Playbook, nodes: list[SyntaxTreeNode]) -> None:
        """Alert and severity lines in a context section (`**Severity:** Warning`
        under Impact): read when the header had none; the text stays as written."""
        for node in nodes:
            if node.type == "table":
                for key, value, line in self.table_fields(node):
                    self.field(playbook, key, value, line, only_missing=True)
                continue
            if node.type not in ("paragraph", "bullet_list"):
                continue
            for offset, text in enumerate(self.source([node]).split("\n")):
                if m := FIELD_LINE.match(text):
                    self.field(
                        playbook,
                        m.group(1).lower(),
                        m.group(2).strip(),
                        _line(node) + offset,
                        only_missing=True,
                    )

    def field(
        self,
        playbook: Playbook,
        key: str,
        value: str,
        line: int,
        *,
        only_missing: bool = False,
    ) -> None:
        if key.startswith("alert"):
            if only_missing and playbook.alerts:
                return
            playbook.alert_condition = value
            for name in _alert_names(value):
                if name not in playbook.alerts:
                    playbook.alerts.append(name)
        elif key in ("severity", "priority"):
            if only_missing and playbook.severity_text:
                return
            self.severity(playbook, value, line)
        elif not only_missing:
            playbook.escalation += _escalation(value)[0]

    def table_fields(self, table: SyntaxTreeNode) -> list[tuple[str, str, int]]:
        """`| Severity | Critical |` rows, or a table with Alert / Severity columns."""
        rows = [
            (row, [_cell_text(c) for c in row.children])
            for part in table.children
            for row in part.children
        ]
        if not rows:
            return []
        found: list[tuple[str, str, int]] = []
        header = [c.lower().strip(" *_`:") for c in rows[0][1]]
        columns = {i: h for i, h in enumerate(header) if TABLE_FIELD.match(h)}
        # `| Severity | Critical |` as the header row of a two-column table is a
        # key and its value, not two column names.
        key_value = len(header) == 2 and columns.keys() == {0}
        if columns and not key_value:
            for row, cells in rows[1:]:
                for i, key in columns.items():
                    if i < len(cells) and cells[i].strip():
                        found.append((key, cells[i], _line(row)))
            return found
        for row, cells in rows:
            key = cells[0].strip(" *_`:").lower() if cells else ""
            if len(cells) >= 2 and TABLE_FIELD.match(key):
                found.append((key, cells[1], _line(row)))
        return found

    def header(self, playbook: Playbook, nodes: list[SyntaxTreeNode]) -> None:
        """`**Alert:**` and `**Severity:**` lines; anything else is kept as context."""
        rest: list[str] = []
        for node in nodes:
            if node.type == "hr":
                continue
            if node.type == "table" and (fields := self.table_fields(node)):
                for key, value, line in fields:
                    self.field(playbook, key, value, line)
            lines = self.source([node]).split("\n")
            for offset, line in enumerate(lines):
                m = FIELD_LINE.match(line)
                if not m:
                    rest.append(line)
                    continue
                self.field(
                    playbook,
                    m.group(1).lower(),
                    m.group(2).strip(),
                    _line(node) + offset,
                )
        overview = "\n".join(rest).strip()
        if overview:
            playbook.context.insert(0, Section("Overview", overview, _line(nodes[0])))

    def severity(self, playbook: Playbook, value: str, line: int) -> None:
        value = _struck_out(value)  # a struck-out old value
        level, *targets = [part.strip() for part in ARROW.split(value, maxsplit=1)]
        level, notes = _parenthesised(level)
        level = level.strip(" *_`.")
        playbook.severity_text = level
        playbook.severity = severity_level(level, self.severities)
        self.severity_lines[id(playbook)] = line
        if targets:
            escalation, more = _escalation(targets[0])
            playbook.escalation += escalation
            notes += more
        playbook.severity_note = "; ".join(n.strip() for n in notes if n.strip())
        what = f"playbook {playbook.number}"
        _fits(
            playbook.severity_text,
            SEVERITY_TEXT_MAX,
            f"the severity of {what}",
            line,
            self.path,
            "a severity is a word such as 'critical' or 'P1'",
        )
        _fits(
            playbook.severity_note,
            SEVERITY_NOTE_MAX,
            f"the severity note of {what}",
            line,
            self.path,
            "the note is the text in parentheses after the severity",
        )

    def check_severity(self, playbook: Playbook) -> None:
        if playbook.severity_text and not playbook.severity:
            self.unclear(
                self.severity_lines.get(id(playbook), playbook.line),
                f"severity '{playbook.severity_text}' of '{playbook.title}' is not one "
                "the console knows (critical, high, warning, info, P1, SEV-2...): kept "
                "as written, with no level; an Admin can add it under Severity aliases",
            )

    def check_partial(self, playbooks: list[Playbook]) -> None:
        """Most playbooks without steps means the file was not understood: refused
        unless the person said it may be partial (--allow-partial)."""
        empty = [p for p in playbooks if not p.steps]
        if not empty:
            return
        if len(empty) * 2 > len(playbooks) and not self.allow_partial:
            first = empty[0]
            raise self.error(
                f"{len(empty)} of {len(playbooks)} playbooks have no steps (the first: "
                f"'{first.title}'): no numbered Steps list, and no Mitigation, "
                "Resolution, Remediation or Procedure section with anything in it. "
                "Import with --allow-partial to accept playbooks without steps",
                first.line,
            )
        for playbook in empty:
            self.unclear(
                playbook.line,
                f"playbook '{playbook.title}' has no steps (no Steps, Mitigation, "
                "Resolution, Remediation or Procedure section)",
            )

    # -- steps --------------------------------------------------------------------------

    def steps(
        self,
        playbook: Playbook,
        head: SyntaxTreeNode,
        nodes: list[SyntaxTreeNode],
        *,
        strict: bool,
    ) -> None:
        """A steps section: numbered sub-headings, else numbered lists, else (not in
        the Yomira shape, where it is an error) each block in order."""
        heads = [n for n in nodes if n.type == "heading"]
        if heads:
            level = min(_level(n) for n in heads)
            if any(
                _level(n) == level and STEP_HEADING.match(_heading_text(n))
                for n in heads
            ):
                self.heading_steps(playbook, head, nodes, level)
                return
        if any(n.type == "ordered_list" for n in nodes):
            self.list_steps(playbook, head, nodes)
            return
        if strict:
            kind = (
                "a bullet list"
                if any(n.type == "bullet_list" for n in nodes)
                else "no list"
            )
            raise self.error(
                f"the '{_heading_text(head)}' section of playbook {playbook.number} has "
                f"{kind}; steps must be a numbered list (1., 2., ...)",
                _line(head),
            )
        self.block_steps(playbook, head, nodes)

    def has_step_headings(self, nodes: list[SyntaxTreeNode]) -> bool:
        heads = [n for n in nodes if n.type == "heading"]
        if not heads:
            return False
        level = min(_level(n) for n in heads)
        return any(
            _level(n) == level and STEP_HEADING.match(_heading_text(n)) for n in heads
        )

    def heading_steps(
        self,
        playbook: Playbook,
        head: SyntaxTreeNode,
        nodes: list[SyntaxTreeNode],
        level: int,
    ) -> None:
        groups: list[tuple[SyntaxTreeNode | None, list[SyntaxTreeNode]]] = [(None, [])]
        for node in nodes:
            if node.type == "heading" and _level(node) == level:
                groups.append((node, []))
            else:
                groups[-1][1].append(node)
        before = groups[0][1]
        if before:
            playbook.context.append(
                Section(_heading_text(head), self.source(before), _line(before[0]))
            )
        options = 0
        for sub_head, body in groups[1:]:
            m = STEP_HEADING.match(_heading_text(sub_head))
            if m is None:
                self.unclear(
                    _line(sub_head),
                    f"'{_heading_text(sub_head)}' between numbered steps is not a step: "
                    "shown as context",
                )
                playbook.context.append(
                    Section(_heading_text(sub_head), self.source(body), _line(sub_head))
                )
                continue
            options += (m.group(1) or "").lower() == "option"
            playbook.steps.append(
                self.heading_step(playbook, len(playbook.steps) + 1, sub_head, body)
            )
        if options:
            self.unclear(
                _line(head),
                f"'{_heading_text(head)}' offers {options} options: each is a step, "
                "but they are alternatives, not a sequence",
            )

    def heading_step(
        self,
        playbook: Playbook,
        number: int,
        head: SyntaxTreeNode,
        nodes: list[SyntaxTreeNode],
    ) -> Step:
        text = _heading_text(head)
        title = text
        if m := STEP_HEADING.match(text):
            word, _, rest, _, rest2 = m.groups()
            # `Option 2: force it` keeps its word: the options are alternatives.
            if (word or "").lower() != "option":
                title = (rest or rest2 or "").strip() or text
        elif m := PLAYBOOK_HEADING.match(text):
            title = m.group(2).strip()
        raw = self.source(nodes)
        _fits(
            title,
            STEP_TITLE_MAX,
            f"the title of step {number} of playbook {playbook.number}",
            _line(head),
            self.path,
        )
        return Step(
            number=number,
            title=title,
            body=raw,
            line=_line(head),
            links=self.links(raw, playbook.number, _line(head)),
            commands=self.commands(nodes),
        )

    def block_steps(
        self, playbook: Playbook, head: SyntaxTreeNode, nodes: list[SyntaxTreeNode]
    ) -> None:
        """No numbered list and no numbered headings: each block is a step, in
        order (a code block belongs to the step above it; a bullet list's items are
        steps). A heading is a step with everything up to the next heading."""
        before = len(playbook.steps)
        pending: list[list[SyntaxTreeNode]] = []
        under_heading = False
        for node in nodes:
            if node.type == "hr":
                continue
            if node.type == "heading":
                pending.append([node])
                under_heading = True
                continue
            if under_heading:
                pending[-1].append(node)
                continue
            follows = pending[-1][-1] if pending else None
            # A list or code after "...the following resources:" belongs to that
            # sentence; a list of links only is a reference list, not steps.
            introduced = (
                follows is not None
                and follows.type == "paragraph"
                and self.source([follows]).rstrip().endswith(":")
            )
            if (
                node.type == "bullet_list"
                and not introduced
                and not self.links_only(node)
            ):
                pending += [[item] for item in node.children]
            elif node.type in ("fence", "code_block", "bullet_list") and pending:
                pending[-1].append(node)
            else:
                pending.append([node])
        for group in pending:
            number = len(playbook.steps) + 1
            if group[0].type == "list_item":
                step = self.step(playbook, number, group[0], group[1:])
            elif group[0].type == "heading":  # `### Disaster and recovery`
                step = self.heading_step(playbook, number, group[0], group[1:])
            else:
                step = self.prose_step(playbook, number, group)
            playbook.steps.append(step)
        if len(playbook.steps) > before:
            self.unclear(
                _line(head),
                f"'{_heading_text(head)}' of '{playbook.title}' has no numbered list: "
                f"each of its {len(playbook.steps) - before} blocks read as a step",
            )

    def links_only(self, bullets: SyntaxTreeNode) -> bool:
        """Every item is a link and nothing else (`- [OKD Help](https://...)`)."""
        for item in bullets.children:
            text = " ".join(
                _cell_text(child)
                for child in item.children
                if child.type == "paragraph"
            )
            if len(item.children) != 1 or not (
                text.startswith("[") and text.endswith(")") and "](" in text
            ):
                return False
        return True

    def prose_step(
        self, playbook: Playbook, number: int, nodes: list[SyntaxTreeNode]
    ) -> Step:
        raw = self.source(nodes)
        # The first sentence of the paragraph, whose lines are joined first.
        first = " ".join(raw.split("\n\n", 1)[0].split())
        m = BOLD_TITLE.match(first)
        if m:
            title = m.group(2).strip().rstrip(":").strip()
        elif first.startswith(("```", "~~~", "    ")) or not first:
            title = f"Step {number}"
        else:
            end = SENTENCE_END.search(first)
            title = first[: end.start() + 1] if end else first
            if len(title) > PROSE_TITLE_MAX:
                cut = title.rfind(" ", 0, PROSE_TITLE_MAX)
                title = (
                    title[: cut if cut > 0 else PROSE_TITLE_MAX].rstrip(" ,;:") + "…"
                )
        return Step(
            number=number,
            title=title.rstrip(":").strip() or f"Step {number}",
            body=raw,  # the whole block: nothing is lost to the title
            line=_line(nodes[0]),
            links=self.links(raw, playbook.number, _line(nodes[0])),
            commands=self.commands(nodes),
        )

    def list_steps(
        self, playbook: Playbook, head: SyntaxTreeNode, nodes: list[SyntaxTreeNode]
    ) -> None:
        items: list[tuple[SyntaxTreeNode, list[SyntaxTreeNode]]] = []
        last_written: int | None = None
        for node in nodes:
            if node.type != "ordered_list":
                if node.type == "hr":
                    continue
                if items:
                    items[-1][1].append(node)  # unindented content between steps
                else:
                    playbook.context.append(
                        Section(_heading_text(head), self.source([node]), _line(node))
                    )
                continue
            for item in node.children:
                written = int(item.info) if (item.info or "").isdigit() else None
                if not items and not playbook.steps and written not in (None, 0, 1):
                    raise self.error(
                        f"the steps of playbook {playbook.number} start at {written}; "
                        "number them from 1 (is an earlier step not a numbered item?)",
                        _line(item),
                    )
                if written is not None and last_written is not None:
                    lazy = written == last_written  # `1.` `1.` `1.` is valid Markdown
                    if written < last_written or (written == last_written and not lazy):
                        raise self.error(
                            f"step numbering goes from {last_written} back to {written} in "
                            f"playbook {playbook.number}; indent the content between steps "
                            "so the numbered list is not broken",
                            _line(item),
                        )
                last_written = written if written is not None else last_written
                items.append((item, []))
        for item, extra in items:
            playbook.steps.append(
                self.step(playbook, len(playbook.steps) + 1, item, extra)
            )

    def step(
        self,
        playbook: Playbook,
        number: int,
        item: SyntaxTreeNode,
        extra: list[SyntaxTreeNode],
    ) -> Step:
        raw = self.item_markdown(item)
        if extra:
            raw = (raw + "\n\n" + self.source(extra)).strip()
        if not raw.strip():
            raise self.error(
                f"step {number} of playbook {playbook.number} is empty", _line(item)
            )
        first = raw.split("\n", 1)
        m = BOLD_TITLE.match(first[0])
        if m:
            title = m.group(2).strip().rstrip(":").strip()
            remainder = m.group(3).lstrip(":").strip()
            body = "\n".join(([remainder] if remainder else []) + first[1:]).strip()
        elif first[0].lstrip().startswith(("```", "~~~", "    ")):
            title, body = f"Step {number}", raw
        else:
            title, body = (
                first[0].strip().rstrip(":"),
                (first[1] if len(first) > 1 else ""),
            )
        _fits(
            title,
            STEP_TITLE_MAX,
            f"the title of step {number} of playbook {playbook.number}",
            _line(item),
            self.path,
            "a step's title is its bold text or its first line: "
            "put the rest on the next line",
        )
        nodes = [*item.children, *extra]
        return Step(
            number=number,
            title=title,
            body=body.strip("\n"),
            line=_line(item),
            links=self.links(raw, playbook.number, _line(item)),
            commands=self.commands(nodes),
        )

    def item_markdown(self, item: SyntaxTreeNode) -> str:
        """The list item's own Markdown, with its marker removed and dedented."""
        lines = [ln.expandtabs(4) for ln in self.lines[item.map[0] : item.map[1]]]
        m = LIST_MARKER.match(lines[0])
        indent = (
            len(m.group(0)) if m and m.group(2) else (len(m.group(0)) + 1 if m else 0)
        )
        out = [lines[0][indent:] if m else lines[0]]
        for line in lines[1:]:
            lead = len(line) - len(line.lstrip(" "))
            out.append(line[min(lead, indent) :])
        return "\n".join(out).strip("\n")

    def links(self, raw: str, own: int, line: int) -> list[int]:
        found: list[int] = []
        for m in LINK.finditer(raw):
            if m.group(1):
                number = int(m.group(1))
            else:
                anchor = m.group(2)
                number = self.anchors.get(anchor)
                if number is None and (num := ANCHOR_NUMBER.match(anchor)):
                    number = int(num.group(1))
                if number is None:
                    continue  # a link to a heading that is not a playbook
            if number not in self.numbers:
                self.warn(
                    line, f"reference to §{number}, but there is no playbook {number}"
                )
                continue
            if number != own and number not in found:
                found.append(number)
        return found

    # -- commands -----------------------------------------------------------------------

    def commands(self, nodes: list[SyntaxTreeNode]) -> list[Command]:
        """Every command in these nodes, in document order. Code blocks are numbered
        so the page can show each block's commands where the block stands."""
        found: list[Command] = []
        block = 0
        for top in nodes:
            for node in [top, *_walk(top)]:
                if node.type in {"fence", "code_block"}:
                    found += self.block_commands(node, block)
                    block += 1
                elif node.type == "inline" and node.children:
                    found += self.inline_commands(node)
        return found

    def block_commands(self, node: SyntaxTreeNode, block: int) -> list[Command]:
        info = (node.info or "").strip() if node.type == "fence" else ""
        word = info.split()[0].lower() if info else ""
        language = fence_language(info) or _guess_language(node.content)
        if language == "sql" and rec.fence_is_config(node.content):
            # postgresql.conf lines (`wal_level = replica`): copy, never run.
            language = word = rec.CONFIG_LANGUAGE
        base_line = _line(node) + (1 if node.type == "fence" else 0)
        _fits(
            language,
            LANGUAGE_MAX,
            "the language of a code block",
            _line(node),
            self.path,
        )
        if language == "bash":
            split = split_shell(
                node.content,
                # `$ ` prompts mark a console session in any shell-ish fence;
                # split_shell falls back to plain lines when there are none.
                console=True,
                command_comment=lambda c: rec.recognise_comment(c) is not None,
            )
            if split.unterminated is not None:
                self.warn(
                    base_line + split.unterminated, "a quote or heredoc is never closed"
                )
        elif language == "sql" or word in SQL_FENCES:
            split = split_sql(node.content)
        else:
            text = node.content.rstrip("\n")
            if not text.strip():
                return []
            cmd = Command(
                language=language or "text", text=text, line=base_line, block=block
            )
            return [cmd]  # config or code: copy it, never run it
        return self.from_split(split, language, base_line, block)

    def from_split(
        self, split: Split, language: str, base_line: int, block: int
    ) -> list[Command]:
        out: list[Command] = []
        for piece in split.pieces:
            cmd = Command(
                language=language,
                text=piece.text,
                line=base_line + piece.line,
                comment=piece.comment,
                context="\n".join(piece.context),
                after="\n".join(piece.after),
                block=block,
            )
            cmd.bind(rec.recognise(piece.text, language))
            out.append(cmd)
        if out and split.trailing:
            out[-1].after = "\n".join(filter(None, [out[-1].after, *split.trailing]))
        return out

    def inline_commands(self, inline: SyntaxTreeNode) -> list[Command]:
        flat = [
            n for n in _walk(inline) if n.type in {"code_inline", "text", "softbreak"}
        ]
        out: list[Command] = []
        line = _line(inline)
        for i, node in enumerate(flat):
            if node.type == "softbreak":
                line += 1
            if node.type != "code_inline":
                continue
            code = node.content.strip()
            nxt = flat[i + 1 : i + 3]
            if (
                rec.wants_body(code)
                and nxt
                and (
                    nxt[0].type == "code_inline"
                    or (
                        len(nxt) == 2
                        and not nxt[0].content.strip()
                        and nxt[1].type == "code_inline"
                    )
                )
            ):
                body = (
                    nxt[0] if nxt[0].type == "code_inline" else nxt[1]
                ).content.strip()
                if body.startswith(("{", "[")):
                    code = f"{code} {body}"
            binding = rec.recognise_inline(code)
            if binding is None:
                continue
            language = (
                "sql"
                if binding.executor == "sql" and not code.startswith("psql")
                else "bash"
            )
            cmd = Command(language=language, text=code, line=line)
            cmd.bind(binding)
            out.append(cmd)
        return out


def _binding_view(command: Command) -> Binding:
    """A Binding that shares the command's spec, so resolving paths updates it."""
    return Binding(
        command.kind,
        command.executor,
        command.parameters,
        command.variables,
        command.spec,
    )


# An untagged block that starts with one of these is a shell session (GitLab's
# runbooks start blocks with `cd` and `for`): split per line, each a copy command.
SHELL_WORDS = frozenset(
    {"cd", "for", "while", "export", "echo", "source", "cat", "grep", "ls", "tail"}
    | {"head", "find", "sed", "awk", "xargs", "watch", "env", "tar", "chef-client"}
    | {"knife", "gitlab-ctl", "gitlab-rake", "sv", "lsof", "netstat", "ss", "mount"}
)


def _guess_language(code: str) -> str:
    lines = [ln.strip() for ln in code.split("\n") if ln.strip()]
    body = [ln for ln in lines if not ln.startswith(("#", "--"))]
    if not body:
        return "bash" if lines and lines[0].startswith("#") else "text"
    if SQL_STATEMENT_START.match(body[0]):
        return "sql"
    first = body[0].removeprefix("$ ").split()[0].rsplit("/", 1)[-1]
    if first in rec.known_programs() or first in SHELL_WORDS:
        return "bash"
    return "bash" if body[0].startswith("$ ") else "text"


def _alert_names(value: str) -> list[str]:
    """Alert names are the identifiers in code spans (`HighErrorRate`), or a leading
    CamelCase word; metric expressions and conditions are not names."""
    spans = ALERT_SPAN.findall(value)
    names = [s for s in spans if ALERT_CODE.match(s) and any(ch.isupper() for ch in s)]
    if not spans:
        # `A, B or C`: each piece's leading CamelCase word; after the first piece,
        # only a piece that is nothing but the name (prose is not a list of names).
        for index, piece in enumerate(ALERT_SEPARATOR.split(value)):
            words = WORD_END.split(piece.strip(), maxsplit=1)
            word = words[0].strip("*_\"'")
            rest = words[1].strip(" *_\"'.") if len(words) > 1 else ""
            if ALERT_WORD.match(word) and (index == 0 or not rest):
                names.append(word)
    return list(dict.fromkeys(names))


def _escalation(value: str) -> tuple[list[str], list[str]]:
    """`PagerDuty + Security team` -> targets; `Slack (critical at < 5%)` keeps the
    parenthesis as a note."""
    value, notes = _parenthesised(value)
    parts = [p.strip().strip(" *_`.") for p in ESCALATION_SEPARATOR.split(value)]
    return [p for p in parts if p], notes


def _struck_out(value: str) -> str:
    """`~~High~~ Critical` -> ` Critical`: each `~~` up to the next `~~` removed."""
    kept: list[str] = []
    at = 0
    while (start := value.find("~~", at)) != -1:
        end = value.find("~~", start + 2)
        if end == -1:
            break
        kept.append(value[at:start])
        at = end + 2
    kept.append(value[at:])
    return "".join(kept)


def _parenthesised(value: str) -> tuple[str, list[str]]:
    """`High (paged at night)` -> (`High `, [`paged at night`]): each `(` up to the
    next `)`, left to right. Found with str.find: the regex `\\(([^)]*)\\)` scanned
    to the end of the text again for each `(` never closed."""
    kept: list[str] = []
    notes: list[str] = []
    at = 0
    while (start := value.find("(", at)) != -1:
        end = value.find(")", start + 1)
        if end == -1:
            break  # no `)` after this `(`, so none after any later one either
        kept.append(value[at:start])
        notes.append(value[start + 1 : end])
        at = end + 1
    kept.append(value[at:])
    return "".join(kept), notes


def parse_runbook(
    source: str | bytes,
    *,
    path: str = "",
    severities: Mapping[str, str] | None = None,
    allow_partial: bool = False,
) -> Runbook:
    """Parse a whole runbook; raises RunbookError naming the line (and `path`, the
    file's name for messages) on bad input. `severities` adds to the built-in
    severity aliases; `allow_partial` accepts a file whose playbooks mostly have
    no steps (listed as not understood instead of refused)."""
    try:
        text, sha = _decode(source)
    except RunbookError as exc:
        exc.path = path
        raise
    return _Parser(
        text, sha, path=path, severities=severities, allow_partial=allow_partial
    ).parse()
