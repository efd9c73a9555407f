"""Which SQL is read-only (a probe) and which changes something (an action), and the
parameters a responder must type: from fenced `sql` blocks, inline statements and
`psql -c "..."` (or a psql heredoc)."""

from __future__ import annotations

import re

from ...binding import ACTION, MANUAL, PROBE, Binding
from ...family import Call
from ...shell import SQL_STATEMENT_START, heredoc_body, is_escape_string, split_sql
from ...text import brace_parameters, target_of, unique, variables_in

SQL_POSITIONAL = re.compile(r"\$(\d+)")
SIDE_EFFECT_FUNCTIONS = {
    "dblink_exec",
    "lo_export",
    "lo_import",
    "lo_unlink",
    "nextval",
    "pg_advisory_lock",
    "pg_advisory_xact_lock",
    "pg_cancel_backend",
    "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot",
    "pg_create_restore_point",
    "pg_drop_replication_slot",
    "pg_promote",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_stat_reset",
    "pg_stat_reset_shared",
    "pg_switch_wal",
    "pg_terminate_backend",
    "pg_wal_replay_pause",
    "pg_wal_replay_resume",
    "set_config",
    "setval",
}
# Group 2 is the argument list with its spaces: users strip it. (A lazy `*?` between
# two `\s*` re-split long runs of spaces every way before failing: quadratic.)
SIDE_EFFECT_CALL = re.compile(
    r"\b(" + "|".join(sorted(SIDE_EFFECT_FUNCTIONS)) + r")\s*+\(([^()]*+)\)", re.I
)
# Statements PostgreSQL refuses inside a transaction block.
NO_TRANSACTION = re.compile(
    r"^\s*(VACUUM|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM|"
    r"CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY|DROP\s+INDEX\s+CONCURRENTLY|"
    r"REINDEX\b.*\bCONCURRENTLY|CREATE\s+TABLESPACE|DROP\s+TABLESPACE)\b",
    re.I | re.S,
)
# What `$n` is compared with (`userid = $1` -> `userid`). The lookbehind starts a
# match only at the start of a name, and nothing gives back what it took: without
# them, one 20,000-character word took 8-10 s (every suffix of it was tried).
SQL_HINT = re.compile(
    r"(?<![\w.])([A-Za-z_][\w.]*+)\s*+(?:=|<>|!=|<=|>=|<|>|\bIN\b)\s*+\(?\s*+\$(\d+)"
)
# Comments, quoted literals and dollar-quoted bodies, found in one pass.
SQL_SPECIAL = re.compile(r"--|/\*|\$\w*\$|'")
SQL_LOCKING = re.compile(
    r"\bFOR\s+(UPDATE|SHARE|NO\s+KEY\s+UPDATE|KEY\s+SHARE)\b", re.I
)
SQL_INTO = re.compile(r"\bINTO\b", re.I)
SQL_EXPLAIN_ANALYZE = re.compile(
    r"^EXPLAIN\s*(\([^)]*\bANALY[SZ]E\b|ANALY[SZ]E\b)", re.I
)
SQL_WRITE = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.I)
SQL_FROM = re.compile(r"\bFROM\b", re.I)
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
SQL_KEYWORDS = {"null", "true", "false", "default", "current_user", "session_user"}


def _strip_sql_literals(sql: str) -> str:
    """SQL with comments and string literals blanked, for keyword checks.

    One pass, left to right, as PostgreSQL's lexer reads it (a `--` inside a string
    is not a comment, a `/* */` inside one hides nothing). From a literal or comment
    that is never closed on, the text is kept as it is: PostgreSQL refuses such a
    statement, and keeping the words visible can only make a command an action, never
    a probe. Each character is looked at a bounded number of times (one regex per
    kind of literal, applied one after the other, rescanned the rest of the text for
    every unclosed opener: quadratic)."""
    out: list[str] = []
    at = 0
    while (m := SQL_SPECIAL.search(sql, at)) is not None:
        start, token = m.start(), m.group(0)
        if token == "--":
            end = sql.find("\n", m.end())
            end, blank = (len(sql) if end == -1 else end), " "
        elif token == "/*":
            end = sql.find("*/", m.end())
            end, blank = (-1 if end == -1 else end + 2), " "
        elif token == "'":
            escapes = is_escape_string(sql, start)
            if escapes:
                start -= 1  # E'...': the E belongs to the literal
            end, blank = _literal_end(sql, m.start(), escapes), "''"
        else:  # $tag$ ... $tag$
            end = sql.find(token, m.end())
            end, blank = (-1 if end == -1 else end + len(token)), "''"
        if end == -1:
            break  # never closed: keep the rest as it is
        out += [sql[at:start], blank]
        at = end
    out.append(sql[at:])
    return "".join(out)


def _literal_end(sql: str, start: int, escapes: bool) -> int:
    """Index just past the quoted literal opened at `start`, or -1 if never closed."""
    i, n = start + 1, len(sql)
    while i < n:
        ch = sql[i]
        if escapes and ch == "\\":
            i += 2
        elif ch != "'":
            i += 1
        elif sql.startswith("''", i):
            i += 2
        else:
            return i + 1
    return -1


def sql_is_read_only(statement: str) -> bool:
    """SELECT/SHOW/EXPLAIN (without ANALYZE), WITH/VALUES/TABLE without writes, and
    no side-effect function: read-only. Everything else changes something."""
    bare = _strip_sql_literals(statement).strip().lstrip("(").strip()
    first = bare.split(None, 1)[0].upper() if bare else ""
    if SIDE_EFFECT_CALL.search(bare):
        return False
    if SQL_LOCKING.search(bare):
        return False
    if first == "SELECT":
        return not SQL_INTO.search(bare)  # SELECT INTO makes a table
    if first == "EXPLAIN":
        return not SQL_EXPLAIN_ANALYZE.match(bare)
    if first in {"SHOW", "VALUES", "TABLE"}:
        return True
    if first == "WITH":
        return not SQL_WRITE.search(bare)
    return False


def sql_parameters(sql: str) -> tuple[list[str], dict[str, str]]:
    """`$1`... and bare identifiers given to side-effect functions in statements
    with no FROM (`pg_cancel_backend(pid)` needs `pid`). Hints name what `$n`
    is compared with (`userid = $1` -> `userid`)."""
    bare = _strip_sql_literals(sql)
    params = [f"${n}" for n in sorted(set(SQL_POSITIONAL.findall(bare)), key=int)]
    hints: dict[str, str] = {}
    for m in SQL_HINT.finditer(bare):
        hints.setdefault(f"${m.group(2)}", m.group(1).split(".")[-1])
    for statement in split_sql(bare).pieces:
        if SQL_FROM.search(statement.text):
            continue
        for m in SIDE_EFFECT_CALL.finditer(statement.text):
            for arg in m.group(2).split(","):
                arg = arg.strip()
                if IDENTIFIER.fullmatch(arg) and arg.lower() not in SQL_KEYWORDS:
                    params.append(arg)
    return unique(params), hints


def recognise_sql(sql: str, target: str = "DATABASE_URL", **extra: str) -> Binding:
    statements = [p.text for p in split_sql(sql).pieces]
    if not statements:
        return Binding()
    read_only = all(sql_is_read_only(s) for s in statements)
    params, hints = sql_parameters(sql)
    spec: dict = {"target": target, "sql": sql.strip(), "statements": len(statements)}
    if any(NO_TRANSACTION.match(_strip_sql_literals(s)) for s in statements):
        spec["transaction"] = False
    if hints:
        spec["parameter_hints"] = hints
    spec.update({k: v for k, v in extra.items() if v})
    return Binding(
        kind=PROBE if read_only else ACTION,
        executor="sql",
        parameters=params,
        variables=unique([target, *variables_in(sql)]),
        spec=spec,
    )


def looks_like_sql_statement(text: str) -> bool:
    return bool(SQL_STATEMENT_START.match(text.strip())) and text.strip().endswith(";")


def recognise_psql(call: Call) -> Binding:
    tokens, text, service = call.tokens, call.text, call.service
    target, sql, user = "DATABASE_URL", None, None
    it = iter(tokens[1:])
    for tok in it:
        if tok in {"-c", "--command"}:
            sql = next(it, "")
        elif tok.startswith("--command="):
            sql = tok.split("=", 1)[1]
        elif tok in {"-d", "--dbname"}:
            target = target_of(next(it, ""), target)
        elif tok in {"-U", "--username"}:
            user = next(it, "")
        elif tok in {"-f", "--file"}:
            return Binding(MANUAL, None, brace_parameters(text), variables_in(text), {})
        elif tok in {"-h", "--host", "-p", "--port", "-v", "--set", "-P", "--pset"}:
            next(it, "")
        elif not tok.startswith("-"):
            target = target_of(tok, target)
    if sql is None:
        sql = heredoc_body(text)
    if not sql or not sql.strip():
        return Binding(MANUAL, None, brace_parameters(text), variables_in(text), {})
    binding = recognise_sql(sql, target, user=user or "", service=service or "")
    binding.variables = unique([*binding.variables, *variables_in(text)])
    return binding
