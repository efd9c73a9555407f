"""Shell and SQL text, read the way their own tools read it: code blocks split into
commands (shell per line, joining continuations, multi-line quotes and heredocs; SQL
per statement; comments kept as each command's context), a shell command tokenised
and unwrapped (`sudo`, `VAR=value`, `docker compose exec SERVICE`), and a `| grep`
stage read as an output filter (applied by probes.runtime.apply_filter)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

HEREDOC = re.compile(r"<<-?\s*+(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
DOLLAR_TAG = re.compile(r"\$([A-Za-z_]\w*)?\$")


@dataclass
class Piece:
    """A command cut from a block, with its position and the comments around it."""

    text: str
    line: int  # 0-based offset of its first line within the block
    comment: str = ""
    context: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


@dataclass
class Split:
    pieces: list[Piece]
    trailing: list[str]  # comments after the last command (or all, if none)
    unterminated: int | None = None  # line offset of a quote never closed


def _scan_shell_line(line: str, quote: str | None) -> tuple[str | None, int | None]:
    """Return the quote still open at the end of `line` and where a trailing
    `# comment` starts (outside quotes), given the quote open at its start."""
    i = 0
    prev = " "
    while i < len(line):
        ch = line[i]
        if quote == "'":
            if ch == "'":
                quote = None
        elif ch == "\\":
            i += 2
            prev = "x"
            continue
        elif quote == '"':
            if ch == '"':
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and prev.isspace():
            return quote, i
        prev = ch
        i += 1
    return quote, None


def split_shell(
    code: str,
    console: bool = False,
    command_comment: Callable[[str], bool] | None = None,
) -> Split:
    """One command per logical line. In a `console` block only `$ ` lines are
    commands; the lines that follow them are sample output. A comment for which
    `command_comment` is true (`# PUT /admin/settings {...}`) is a command too."""
    lines = code.split("\n")
    if console and not any(ln.lstrip().startswith("$ ") for ln in lines):
        console = False
    pieces: list[Piece] = []
    pending: list[str] = []  # comments waiting for the next command
    buf: list[str] = []
    start = 0
    quote: str | None = None
    heredoc: str | None = None
    comment = ""

    def emit() -> None:
        nonlocal buf, pending, comment
        pieces.append(Piece("\n".join(buf).rstrip(), start, comment, pending))
        buf, pending, comment = [], [], ""

    for offset, raw in enumerate(lines):
        line = raw.rstrip()
        if heredoc is not None:
            buf.append(line)
            if line.strip() == heredoc:
                heredoc = None
                emit()
            continue
        if not buf:
            stripped = line.strip()
            if not stripped:
                continue
            if console:
                if stripped.startswith("$ "):
                    line = stripped[2:]
                else:
                    # Sample output belongs to the command that printed it.
                    (pieces[-1].after if pieces else pending).append(stripped)
                    continue
            elif stripped.startswith("#"):
                text = stripped.lstrip("#").strip()
                if command_comment and command_comment(text):
                    pieces.append(Piece(text, offset, "", pending))
                    pending = []
                else:
                    pending.append(text)
                continue
            start = offset
            line = line.lstrip()
        quote_before = quote
        quote, hash_at = _scan_shell_line(line, quote)
        code_part = line
        if hash_at is not None and quote is None:
            code_part = line[:hash_at].rstrip()
            comment = line[hash_at + 1 :].strip()
        buf.append(code_part)
        if quote is not None:
            continue
        if quote_before is None and (m := HEREDOC.search(code_part)):
            heredoc = m.group(2)
            continue
        if code_part.endswith("\\"):
            continue
        if not "\n".join(buf).strip():
            buf = []
            continue
        emit()

    unterminated = None
    if buf:
        # A quote or heredoc never closed: keep each remaining line as its own
        # command rather than swallowing the rest of the block.
        unterminated = start
        for extra, text in enumerate(buf):
            if text.strip():
                pieces.append(Piece(text.strip(), start + extra, "", pending))
                pending = []
    return Split(pieces, pending, unterminated)


def _dedent_block(lines: list[str]) -> str:
    indents = [len(ln) - len(ln.lstrip()) for ln in lines[1:] if ln.strip()]
    cut = min(indents) if indents else 0
    head, *rest = lines
    return "\n".join([head.strip(), *[ln[cut:] for ln in rest]]).strip()


def is_escape_string(code: str, quote_at: int) -> bool:
    """`E'it\\'s'`: PostgreSQL's escape strings, where backslash escapes a quote."""
    return (
        code[quote_at] == "'"
        and quote_at > 0
        and code[quote_at - 1] in "eE"
        and (
            quote_at < 2
            or not (code[quote_at - 2].isalnum() or code[quote_at - 2] == "_")
        )
    )


def _end_of_quoted(code: str, start: int, escapes: bool = False) -> int:
    """Index just past the literal or quoted identifier opened at `start`."""
    quote, i = code[start], start + 1
    while i < len(code):
        if escapes and code[i] == "\\":
            i += 2
            continue
        if code[i] == quote:
            if code.startswith(quote * 2, i):
                i += 2
                continue
            return i + 1
        i += 1
    return len(code)


def split_sql(code: str) -> Split:
    """One command per statement, aware of quotes, dollar quotes and comments.
    Comments before a statement are its context; a comment on the line where a
    statement ends is that statement's trailing comment."""
    pieces: list[Piece] = []
    pending: list[str] = []
    i, n = 0, len(code)
    stmt_start: int | None = None
    last_end_line = -1
    # Line numbers are counted forward from the last one asked for (positions only
    # grow): counting from the start for each statement was quadratic.
    counted_to, counted = 0, 0

    def line_of(pos: int) -> int:
        nonlocal counted_to, counted
        if pos >= counted_to:
            counted += code.count("\n", counted_to, pos)
        else:
            counted -= code.count("\n", pos, counted_to)
        counted_to = pos
        return counted

    while i < n:
        ch = code[i]
        if code.startswith("--", i):
            end = code.find("\n", i)
            end = n if end == -1 else end
            text = code[i + 2 : end].strip()
            if stmt_start is None:
                if pieces and line_of(i) == last_end_line and not pieces[-1].comment:
                    pieces[-1].comment = text
                elif text:
                    pending.append(text)
            i = end
            continue
        if code.startswith("/*", i):
            end = code.find("*/", i + 2)
            end = n if end == -1 else end + 2
            if stmt_start is None:
                pending.extend(
                    ln.strip(" *")
                    for ln in code[i + 2 : end - 2].splitlines()
                    if ln.strip(" *")
                )
            i = end
            continue
        if ch.isspace():
            i += 1
            continue
        if stmt_start is None:
            stmt_start = i
        if ch == "'" or ch == '"':
            i = _end_of_quoted(code, i, escapes=is_escape_string(code, i))
            continue
        if ch == "$" and (m := DOLLAR_TAG.match(code, i)):
            tag = m.group(0)
            close = code.find(tag, i + len(tag))
            i = n if close == -1 else close + len(tag)
            continue
        if ch == ";":
            text = code[stmt_start : i + 1]
            pieces.append(
                Piece(_dedent_block(text.split("\n")), line_of(stmt_start), "", pending)
            )
            pending = []
            last_end_line = line_of(i)
            stmt_start = None
        i += 1
    if stmt_start is not None and code[stmt_start:].strip():
        text = code[stmt_start:].rstrip()
        pieces.append(
            Piece(_dedent_block(text.split("\n")), line_of(stmt_start), "", pending)
        )
        pending = []
    return Split(pieces, pending)


def split_top_level(text: str, separators: tuple[str, ...]) -> list[str]:
    """Split a shell command on operators outside quotes (`&&`, `||`, `;`, `|`)."""
    parts: list[str] = []
    quote: str | None = None
    cur: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"' and i + 1 < len(text):
                cur.append(text[i : i + 2])
                i += 2
                continue
            if ch == quote:
                quote = None
            cur.append(ch)
            i += 1
            continue
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if ch in "'\"":
            quote = ch
            cur.append(ch)
            i += 1
            continue
        for sep in separators:
            if text.startswith(sep, i):
                # `|` must not match the first half of `||`.
                if sep == "|" and text.startswith("||", i):
                    continue
                parts.append("".join(cur).strip())
                cur = []
                i += len(sep)
                break
        else:
            cur.append(ch)
            i += 1
    parts.append("".join(cur).strip())
    return parts


SHELL_LANGUAGES = {
    "bash",
    "sh",
    "shell",
    "zsh",
    "console",
    "shell-session",
    "shellsession",
}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=.*")
# The first word of an SQL statement (used to tell an SQL block from a shell one).
SQL_STATEMENT_START = re.compile(
    r"^(SELECT|SHOW|EXPLAIN|WITH|UPDATE|INSERT|DELETE|VACUUM|ANALYZE|DROP|ALTER|CREATE|"
    r"TRUNCATE|REINDEX|GRANT|REVOKE|SET|RESET|CLUSTER|REFRESH|LOCK|COPY)\b",
    re.I,
)


# shlex builds each token one character at a time by string concatenation, which is
# quadratic in a token's length (a 320 KB quoted argument took 0.75 s, a megabyte
# several seconds). Longer commands are not tokenised: they stay manual (copyable).
SHELL_TOKENS_MAX = 64 * 1024


def tokens(text: str) -> list[str] | None:
    if len(text) > SHELL_TOKENS_MAX:
        return None
    try:
        return shlex.split(text.replace("\\\n", " "), comments=False, posix=True)
    except ValueError:
        return None


def unwrap(tokens: list[str]) -> tuple[list[str], str | None]:
    """Strip `sudo`, `VAR=value` and `docker compose exec SERVICE` wrappers."""
    service = None
    while tokens:
        if tokens[0] == "sudo" or ENV_ASSIGNMENT.fullmatch(tokens[0]):
            tokens = tokens[1:]
            continue
        if tokens[:3] == ["docker", "compose", "exec"] or tokens[:2] in (
            ["docker-compose", "exec"],
            ["docker", "exec"],
        ):
            skip = 3 if tokens[1] == "compose" else 2
            rest = tokens[skip:]
            while rest and rest[0].startswith("-"):
                takes_value = rest[0] in {
                    "-u",
                    "--user",
                    "-e",
                    "--env",
                    "-w",
                    "--workdir",
                }
                rest = rest[2:] if takes_value else rest[1:]
            if len(rest) < 2:
                return tokens, service
            service, tokens = rest[0], rest[1:]
            continue
        break
    return tokens, service


def grep_filter(stage: str) -> dict | None:
    stage_tokens = tokens(stage)
    if not stage_tokens or stage_tokens[0] not in {"grep", "egrep"}:
        return None
    flags = [t for t in stage_tokens[1:] if t.startswith("-")]
    words = [t for t in stage_tokens[1:] if not t.startswith("-")]
    if len(words) != 1:
        return None
    return {
        "pattern": words[0],
        "ignore_case": any("i" in f for f in flags),
        "invert": any("v" in f for f in flags),
        "regex": stage_tokens[0] == "egrep" or any("E" in f for f in flags),
    }


def heredoc_body(text: str) -> str | None:
    """The body of `psql <<EOF ... EOF` when the text ends with its closing tag.
    Read by lines (a regex with `.*` then `\\s*` rescanned runs of blank lines)."""
    m = HEREDOC.search(text)
    if m is None or not text.startswith("\n", m.end()):
        return None
    rest = text[m.end() + 1 :].rstrip()
    cut = rest.rfind("\n")
    if cut == -1 or rest[cut + 1 :].strip() != m.group(2):
        return None
    return rest[:cut]
