"""Markdown runbook -> Runbook dataclasses.

A playbook is a numbered heading (`## 3. PostgreSQL Down / Unreachable`). Under it:
`**Alert:**` and `**Severity:**` lines, context sections (Impact, Symptoms, anything
not understood), a Diagnosis section and a Steps / Immediate steps numbered list.
Everything is parsed before anything is returned, so a bad file raises RunbookError
(naming the line) and nothing downstream sees half a runbook."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from markdown_it.tree import SyntaxTreeNode

from probes import recognise as rec
from probes.binding import Binding
from probes.shell import SQL_STATEMENT_START, Split, split_shell, split_sql

from .markdown import SQL_FENCES, fence_language, make_markdown
from .slugs import github_anchor, slugify
from .types import (
    LANGUAGE_MAX,
    PLAYBOOK_ANCHOR_MAX,
    PLAYBOOK_SLUG_MAX,
    PLAYBOOK_TITLE_MAX,
    RUNBOOK_KEY_MAX,
    RUNBOOK_TITLE_MAX,
    RUNBOOK_VERSION_MAX,
    SEVERITY_MAX,
    SEVERITY_NOTE_MAX,
    STEP_TITLE_MAX,
    Command,
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
NUMBERED_HEADING = re.compile(r"^(?:§\s*+)?(\d{1,3})(?:\s*+[.):\-–—])?\s++(\S.*)$")
STEPS_HEADING = re.compile(r"^(immediate\s+)?steps\b", re.I)
DIAGNOSIS_HEADING = re.compile(r"^diagnos", re.I)
TOC_HEADING = re.compile(r"^(table\s+of\s+)?contents$", re.I)
FIELD_LINE = re.compile(
    r"^\s*+(?:[-*+]\s++)?(?:\*\*|__)?\s*+(alerts?|severity|escalation|escalate\s+to)"
    r"\s*+(?::\s*+(?:\*\*|__)|(?:\*\*|__)\s*+:|:)\s*+(.*)$",
    re.I,
)
# The spaces around an arrow or a separator are stripped from the pieces after the
# split: a pattern that starts with `\s*` rescans a run of spaces from each of its
# characters.
ARROW = re.compile(r"→|->|=>|⇒|➜")
ESCALATION_SEPARATOR = re.compile(r"\+|,|&|\band\b|/")
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
LIST_MARKER = re.compile(r"^(\s*)(\d{1,9})([.)])([ \t]+|$)")
VERSION = re.compile(r"version\W{0,6}\s*v?(\d[\w.+-]*)", re.I)


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


def _fits(value: str, limit: int, what: str, line: int, hint: str = "") -> None:
    """Refuse a field longer than the column that stores it: the database would
    refuse it mid-import (PostgreSQL enforces lengths), after the dry run said yes."""
    if len(value) > limit:
        raise RunbookError(
            f"{what} is {len(value)} characters long; at most {limit} fit"
            + (f" ({hint})" if hint else ""),
            line,
        )


class _Parser:
    def __init__(self, text: str, sha: str) -> None:
        self.text = text
        self.sha = sha
        self.lines = text.split("\n")
        self.warnings: list[str] = []
        self.root = SyntaxTreeNode(make_markdown().parse(text))
        self.numbers: set[int] = set()
        self.anchors: dict[str, int] = {}

    # -- helpers ------------------------------------------------------------------------

    def source(self, nodes: list[SyntaxTreeNode]) -> str:
        mapped = [n for n in nodes if n.map]
        if not mapped:
            return ""
        start, end = mapped[0].map[0], max(n.map[1] for n in mapped)
        return "\n".join(self.lines[start:end]).strip("\n")

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(f"line {line}: {message}")

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
                raise RunbookError(
                    f"the code block opened here with {marker} is never closed",
                    _line(node),
                )

    # -- the document -------------------------------------------------------------------

    def parse(self) -> Runbook:
        self.check_fences()
        blocks = self.root.children
        headings = [(i, n) for i, n in enumerate(blocks) if n.type == "heading"]
        numbered = [
            (i, n) for i, n in headings if NUMBERED_HEADING.match(_heading_text(n))
        ]
        if not numbered:
            where = _line(headings[0][1]) if headings else 1
            raise RunbookError(
                "no playbook sections found: expected numbered headings such as "
                "'## 1. High API Error Rate' (is this a runbook?)",
                where,
            )
        level = min(_level(n) for _, n in numbered)
        starts = [i for i, n in headings if _level(n) <= level]
        title, title_line, preamble_nodes = "", 1, []
        runbook_sections: list[Section] = []
        playbook_spans: list[tuple[SyntaxTreeNode, list[SyntaxTreeNode]]] = []
        first = starts[0]
        for node in blocks[:first]:
            if node.type == "heading" and _level(node) == 1 and not title:
                title, title_line = _heading_text(node), _line(node)
            else:
                preamble_nodes.append(node)
        for pos, start in enumerate(starts):
            end = starts[pos + 1] if pos + 1 < len(starts) else len(blocks)
            head, body = blocks[start], blocks[start + 1 : end]
            text = _heading_text(head)
            if _level(head) == level and NUMBERED_HEADING.match(text):
                playbook_spans.append((head, body))
            elif _level(head) == 1 and not title:
                title, title_line = text, _line(head)
                preamble_nodes.extend(body)
            elif TOC_HEADING.match(text):
                continue  # navigation, rebuilt by the console itself
            else:
                runbook_sections.append(Section(text, self.source(body), _line(head)))

        for head, _ in playbook_spans:
            number = int(NUMBERED_HEADING.match(_heading_text(head)).group(1))
            if number in self.numbers:
                raise RunbookError(
                    f"playbook number {number} is used twice", _line(head)
                )
            self.numbers.add(number)
            self.anchors[github_anchor(_heading_text(head))] = number

        playbooks = [self.playbook(head, body) for head, body in playbook_spans]
        slugs: dict[str, Playbook] = {}
        for playbook in playbooks:
            if playbook.slug in slugs:
                raise RunbookError(
                    f"playbook {playbook.number} has the same title (slug "
                    f"'{playbook.slug}') as playbook {slugs[playbook.slug].number}",
                    playbook.line,
                )
            slugs[playbook.slug] = playbook
        rec.settle([_binding_view(c) for p in playbooks for c in p.commands])

        preamble = self.source(preamble_nodes)
        version = VERSION.search(preamble)
        title = title or "Runbook"
        _fits(title, RUNBOOK_TITLE_MAX, "the runbook's title", title_line)
        key = slugify(title)
        if len(key) > RUNBOOK_KEY_MAX:
            raise RunbookError(
                f"the runbook's title makes a key (slug) of {len(key)} characters; at "
                f"most {RUNBOOK_KEY_MAX} fit (shorten the title)",
                title_line,
            )
        if version:
            first = next(n for n in preamble_nodes if n.map)
            _fits(
                version.group(1),
                RUNBOOK_VERSION_MAX,
                "the runbook's version",
                _line(first) + preamble.count("\n", 0, version.start()),
            )
        return Runbook(
            title=title,
            version=version.group(1) if version else "",
            sha256=self.sha,
            preamble=preamble,
            sections=runbook_sections,
            playbooks=playbooks,
            warnings=self.warnings,
        )

    # -- one playbook -------------------------------------------------------------------

    def playbook(self, head: SyntaxTreeNode, body: list[SyntaxTreeNode]) -> Playbook:
        heading = _heading_text(head)
        m = NUMBERED_HEADING.match(heading)
        number, title = int(m.group(1)), m.group(2).strip()
        playbook = Playbook(
            number=number,
            title=title,
            slug=slugify(title) or f"playbook-{number}",
            anchor=github_anchor(heading),
            line=_line(head),
        )
        what = f"playbook {number}"
        _fits(title, PLAYBOOK_TITLE_MAX, f"the title of {what}", playbook.line)
        _fits(
            playbook.slug,
            PLAYBOOK_SLUG_MAX,
            f"the slug of {what}",
            playbook.line,
            "the slug is the title in lower case with dashes; shorten the title",
        )
        _fits(
            playbook.anchor,
            PLAYBOOK_ANCHOR_MAX,
            f"the link anchor of {what}",
            playbook.line,
            "the anchor is the heading with dashes for spaces; shorten the title",
        )
        sub_levels = [_level(n) for n in body if n.type == "heading"]
        sub = min(sub_levels) if sub_levels else None
        header: list[SyntaxTreeNode] = []
        sections: list[tuple[SyntaxTreeNode, list[SyntaxTreeNode]]] = []
        for node in body:
            if node.type == "heading" and _level(node) == sub:
                sections.append((node, []))
            elif sections:
                sections[-1][1].append(node)
            else:
                header.append(node)
        self.header(playbook, header)
        for sub_head, nodes in sections:
            name = _heading_text(sub_head)
            if STEPS_HEADING.match(name):
                self.steps(playbook, sub_head, nodes)
            elif DIAGNOSIS_HEADING.match(name) and not playbook.diagnosis:
                playbook.diagnosis = self.source(nodes)
                playbook.diagnosis_commands = self.commands(nodes)
            else:
                playbook.context.append(
                    Section(name, self.source(nodes), _line(sub_head))
                )
        if not playbook.steps:
            self.warn(playbook.line, f"playbook {number} has no 'Steps' section")
        return playbook

    def header(self, playbook: Playbook, nodes: list[SyntaxTreeNode]) -> None:
        """`**Alert:**` and `**Severity:**` lines; anything else is kept as context."""
        rest: list[str] = []
        for node in nodes:
            if node.type == "hr":
                continue
            lines = self.source([node]).split("\n")
            for offset, line in enumerate(lines):
                m = FIELD_LINE.match(line)
                if not m:
                    rest.append(line)
                    continue
                key, value = m.group(1).lower(), m.group(2).strip()
                if key.startswith("alert"):
                    playbook.alert_condition = value
                    playbook.alerts = _alert_names(value)
                elif key == "severity":
                    self.severity(playbook, value, _line(node) + offset)
                else:
                    playbook.escalation += _escalation(value)[0]
        overview = "\n".join(rest).strip()
        if overview:
            playbook.context.insert(0, Section("Overview", overview, _line(nodes[0])))

    def severity(self, playbook: Playbook, value: str, line: int) -> None:
        value = _struck_out(value)  # a struck-out old value
        level, *targets = [part.strip() for part in ARROW.split(value, maxsplit=1)]
        level, notes = _parenthesised(level)
        level = level.strip(" *_`.")
        playbook.severity = level.split()[0].lower() if level else ""
        if targets:
            escalation, more = _escalation(targets[0])
            playbook.escalation += escalation
            notes += more
        playbook.severity_note = "; ".join(n.strip() for n in notes if n.strip())
        what = f"playbook {playbook.number}"
        _fits(
            playbook.severity,
            SEVERITY_MAX,
            f"the severity of {what}",
            line,
            "a severity is one word such as 'critical'",
        )
        _fits(
            playbook.severity_note,
            SEVERITY_NOTE_MAX,
            f"the severity note of {what}",
            line,
            "the note is the text in parentheses after the severity",
        )

    def steps(
        self, playbook: Playbook, head: SyntaxTreeNode, nodes: list[SyntaxTreeNode]
    ) -> None:
        lists = [n for n in nodes if n.type == "ordered_list"]
        if not lists:
            kind = (
                "a bullet list"
                if any(n.type == "bullet_list" for n in nodes)
                else "no list"
            )
            raise RunbookError(
                f"the '{_heading_text(head)}' section of playbook {playbook.number} has "
                f"{kind}; steps must be a numbered list (1., 2., ...)",
                _line(head),
            )
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
                    raise RunbookError(
                        f"the steps of playbook {playbook.number} start at {written}; "
                        "number them from 1 (is an earlier step not a numbered item?)",
                        _line(item),
                    )
                if written is not None and last_written is not None:
                    lazy = written == last_written  # `1.` `1.` `1.` is valid Markdown
                    if written < last_written or (written == last_written and not lazy):
                        raise RunbookError(
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
            raise RunbookError(
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
            len(m.group(0)) if m and m.group(4) else (len(m.group(0)) + 1 if m else 0)
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
        base_line = _line(node) + (1 if node.type == "fence" else 0)
        _fits(language, LANGUAGE_MAX, "the language of a code block", _line(node))
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


def _guess_language(code: str) -> str:
    lines = [ln.strip() for ln in code.split("\n") if ln.strip()]
    body = [ln for ln in lines if not ln.startswith(("#", "--"))]
    if not body:
        return "bash" if lines and lines[0].startswith("#") else "text"
    if SQL_STATEMENT_START.match(body[0]):
        return "sql"
    first = body[0].removeprefix("$ ").split()[0].rsplit("/", 1)[-1]
    if first in rec.known_programs() or body[0].startswith("$ "):
        return "bash"
    return "text"


def _alert_names(value: str) -> list[str]:
    """Alert names are the identifiers in code spans (`HighErrorRate`), or a leading
    CamelCase word; metric expressions and conditions are not names."""
    spans = ALERT_SPAN.findall(value)
    names = [s for s in spans if ALERT_CODE.match(s) and any(ch.isupper() for ch in s)]
    if not spans:
        word = WORD_END.split(value.strip(), maxsplit=1)[0].strip("*_")
        if ALERT_WORD.match(word):
            names = [word]
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


def parse_runbook(source: str | bytes) -> Runbook:
    """Parse a whole runbook; raises RunbookError naming the line on bad input."""
    text, sha = _decode(source)
    return _Parser(text, sha).parse()
