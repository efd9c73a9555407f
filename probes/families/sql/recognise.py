"""Which SQL is read-only (a probe) and which changes something (an action), and the
parameters a responder must type: from fenced `sql` blocks, inline statements and
`psql -c "..."` (or a psql heredoc).

Three decisions beyond read-only or not (issue 13):

- Which database. `psql "${NAME}"` (or `-d "${NAME}"`) runs against TARGET_NAME;
  `psql -h HOST` or a literal `postgresql://user@HOST/db` against the target that
  TARGET_PG_HOSTS names for HOST (see probes.targets), resolved when it runs. A
  psql naming neither runs against DATABASE_URL, as before. A host never falls
  back to DATABASE_URL: unmapped, the run is refused, naming the host.
- Configuration is not SQL. `wal_level = replica` lines (postgresql.conf) in an SQL
  fence are copied by a person, never sent to the database (`is_config`).
- Heavy reads. A read-only statement that reads a whole table (no WHERE and no
  LIMIT, or an aggregate such as count(*) with no WHERE) is still a probe, but its
  spec says why it is heavy (`spec["heavy"]`): the console shows that and runs it
  only once the person confirms. Catalog and statistics views (pg_*,
  information_schema) are small and never heavy. This is a reading of the text,
  not of the planner: a WHERE is trusted to be selective."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from ... import targets
from ...binding import ACTION, MANUAL, PROBE, Binding
from ...family import Call
from ...shell import SQL_STATEMENT_START, heredoc_body, is_escape_string, split_sql
from ...text import VARIABLE, brace_parameters, target_of, unique, variables_in

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


# postgresql.conf's `name = value` (the `=` written), a value being one word, number
# with unit or quoted string, then an optional `# comment`. No SQL statement starts
# with a bare name and `=`: `SET x = y;` and `ALTER SYSTEM SET ...` stay SQL.
CONFIG_LINE = re.compile(
    r"(?<![\w.])[A-Za-z_][\w.]*+[ \t]*+=[ \t]*+"
    r"(?:'(?:[^'\n]|'')*+'|\"[^\"\n]*+\"|[^\s#;'\"]++)[ \t]*+;?[ \t]*+(?:#.*+)?"
)


def is_config(text: str) -> bool:
    """Configuration lines (`wal_level = replica`, `shared_buffers = '4GB'  # 25%`),
    with `#` or `--` comment lines between them: a file's contents, never SQL."""
    found = False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "--")):
            continue
        if not CONFIG_LINE.fullmatch(line):
            return False
        found = True
    return found


# --- heavy reads ---------------------------------------------------------------------

# After literals and comments are blanked: quoted and dotted names, parentheses,
# commas and anything else one character at a time.
SQL_TOKEN = re.compile(
    r'(?:"[^"]*"|[A-Za-z_][\w$]*)(?:\.(?:"[^"]*"|[A-Za-z_][\w$]*))*|\S'
)
AGGREGATES = frozenset(
    {
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "array_agg",
        "string_agg",
        "json_agg",
        "jsonb_agg",
        "bool_and",
        "bool_or",
        "every",
        "stddev",
        "variance",
        "percentile_cont",
        "percentile_disc",
    }
)
# Words that end a FROM list (the relations named after FROM, separated by commas).
FROM_ENDS = frozenset(
    {
        "where",
        "group",
        "order",
        "limit",
        "offset",
        "fetch",
        "having",
        "window",
        "union",
        "intersect",
        "except",
        "for",
        "on",
        "using",
        "returning",
    }
)
JOINS = frozenset({"join"})


def _is_catalog(name: str) -> bool:
    """pg_catalog, the statistics views and information_schema: small, in memory."""
    bare = name.replace('"', "").lower()
    schema, _, table = bare.rpartition(".")
    return (
        schema in {"pg_catalog", "information_schema"}
        or table.startswith("pg_")
        or schema.startswith("pg_")
    )


def _cte_names(words: list[str]) -> set[str]:
    """`WITH name AS (`, `, name AS [NOT] [MATERIALIZED] (`: names a query reads
    like tables that are not tables."""
    names = set()
    for i, word in enumerate(words[:-2]):
        if words[i + 1].lower() != "as":
            continue
        rest = [w.lower() for w in words[i + 2 : i + 5]]
        while rest and rest[0] in {"not", "materialized"}:
            rest.pop(0)
        if rest[:1] == ["("]:
            names.add(word.lower())
    return names


class _Query:
    """One SELECT (a statement, or a subquery in parentheses) as the scan sees it."""

    def __init__(self) -> None:
        self.select = False
        self.tables: list[str] = []
        self.where = False
        self.limit = False
        self.aggregate = False
        self.expect: str | None = None  # "relation": the next name is one
        self.in_from = False
        # `FROM (a JOIN b ON ...)`: a bracketed join, whose tables are its
        # parent's (the parent's WHERE and LIMIT apply to them).
        self.group = False


def _whole_table_reads(statement: str) -> list[tuple[list[str], bool]]:
    """For each SELECT in the statement that reads user tables with no WHERE and
    either no LIMIT or an aggregate: (its tables, whether it aggregates)."""
    words = SQL_TOKEN.findall(_strip_sql_literals(statement))
    ctes = _cte_names(words)
    stack, done = [_Query()], []
    for i, tok in enumerate(words):
        q = stack[-1]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        low = tok.lower()
        if tok == "(":
            inner = _Query()
            if q.expect == "relation":
                q.expect = None  # a subquery or VALUES list: read on its own
                if nxt.lower() not in {"select", "values", "with", "table", "("}:
                    inner.group = inner.select = inner.in_from = True
                    inner.expect = "relation"
            stack.append(inner)
            continue
        if tok == ")":
            if len(stack) > 1:
                inner = stack.pop()
                if inner.group:
                    stack[-1].tables += inner.tables
                else:
                    done.append(inner)
            continue
        if tok == ",":
            if q.in_from:
                q.expect = "relation"
            continue
        if not (tok[0].isalpha() or tok[0] in '_"'):
            continue
        if q.expect == "relation" and low not in {"only", "lateral"}:
            q.expect = None
            if nxt != "(" and low not in FROM_ENDS:
                q.tables.append(tok)  # not a function (generate_series(...))
            continue
        if low == "select":
            q.select = True
        elif low == "from" and q.select:
            q.expect, q.in_from = "relation", True
        elif low in JOINS and q.select:
            # `FROM a JOIN b ON ..., c`: the FROM list goes on after a join.
            q.expect, q.in_from = "relation", True
        elif low == "where":
            q.where, q.in_from = True, False
        elif low in {"limit", "fetch"}:
            q.limit, q.in_from = True, False
        elif low in {"group", "distinct", "having"} or (
            low in AGGREGATES and nxt == "("
        ):
            q.aggregate = True
            q.in_from = q.in_from and low not in {"group", "having"}
        elif low in FROM_ENDS:
            q.in_from = False
    done += stack
    found = []
    for q in done:
        tables = [t for t in q.tables if not _is_catalog(t) and t.lower() not in ctes]
        if q.select and tables and not q.where and (q.aggregate or not q.limit):
            found.append((tables, q.aggregate))
    return found


TABLE_STATEMENT = re.compile(r"^\s*TABLE\s+(?:ONLY\s+)?([\w.\"]+)", re.I)


def heavy_read(statement: str) -> str:
    """Why this read-only statement may hurt production, or "" when it should not:
    it reads a whole user table (a sequential scan)."""
    bare = _strip_sql_literals(statement).strip()
    if bare[:7].upper() == "EXPLAIN":
        return ""  # planned, not run (EXPLAIN ANALYZE is an action)
    if (m := TABLE_STATEMENT.match(bare)) and not _is_catalog(m.group(1)):
        return (
            f"reads every row of {m.group(1)} (TABLE, no LIMIT): a sequential scan "
            "of the whole table, slow on a big one and competing with production"
        )
    reads = _whole_table_reads(statement)
    if not reads:
        return ""
    tables, aggregate = reads[0]
    tables = list(dict.fromkeys(tables))
    names = ", ".join(tables[:3]) + (
        f" and {len(tables) - 3} more" if len(tables) > 3 else ""
    )
    if aggregate:
        return (
            f"aggregates over every row of {names} (no WHERE): a full scan of the "
            "table, slow on a big one and heavy on a busy database "
            "(pg_class.reltuples gives a row estimate for free)"
        )
    return (
        f"reads every row of {names} (no WHERE, no LIMIT): a sequential scan, slow "
        "on a big table and competing with production queries"
    )


def recognise_sql(sql: str, target: str = "DATABASE_URL", **extra: str) -> Binding:
    if is_config(sql):
        # postgresql.conf lines: a person puts them in the file (or ALTER SYSTEM).
        return Binding(MANUAL, None, [], variables_in(sql), {})
    statements = [p.text for p in split_sql(sql).pieces]
    if not statements:
        return Binding()
    read_only = all(sql_is_read_only(s) for s in statements)
    params, hints = sql_parameters(sql)
    spec: dict = {"sql": sql.strip(), "statements": len(statements)}
    if target:
        spec["target"] = target
    if any(NO_TRANSACTION.match(_strip_sql_literals(s)) for s in statements):
        spec["transaction"] = False
    if hints:
        spec["parameter_hints"] = hints
    if read_only and (heavy := next(filter(None, map(heavy_read, statements)), "")):
        spec["heavy"] = heavy
    spec.update({k: v for k, v in extra.items() if v})
    return Binding(
        kind=PROBE if read_only else ACTION,
        executor="sql",
        parameters=params,
        variables=unique([*([target] if target else []), *variables_in(sql)]),
        spec=spec,
    )


def looks_like_sql_statement(text: str) -> bool:
    return bool(SQL_STATEMENT_START.match(text.strip())) and text.strip().endswith(";")


# psql options that take a value, in their short and long spellings.
PSQL_VALUE = {
    "-c": "command",
    "--command": "command",
    "-d": "dbname",
    "--dbname": "dbname",
    "-U": "user",
    "--username": "user",
    "-h": "host",
    "--host": "host",
    "-p": "port",
    "--port": "port",
    "-f": "file",
    "--file": "file",
    "-v": None,
    "--set": None,
    "--variable": None,
    "-P": None,
    "--pset": None,
    "-o": None,
    "--output": None,
    "-L": None,
    "--log-file": None,
    "-F": None,
    "--field-separator": None,
    "-R": None,
    "--record-separator": None,
    "-T": None,
    "--table-attr": None,
}
URI = re.compile(r"^postgres(?:ql)?://", re.I)
CONNINFO = re.compile(r"^\s*+\w++\s*+=")
CONNINFO_PAIR = re.compile(r"(?<!\w)(\w++)\s*+=\s*+('(?:[^'\\]|\\.)*+'|\S++)")


def _psql_options(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """psql's options by name (`-h db`, `-hdb`, `--host=db`) and its positional
    arguments (dbname, then username), as psql reads them."""
    options: dict[str, str] = {}
    positional: list[str] = []
    it = iter(tokens)
    for tok in it:
        name, value = tok, None
        if tok.startswith("--") and "=" in tok:
            name, _, value = tok.partition("=")
        elif len(tok) > 2 and tok[0] == "-" and tok[1] != "-":
            # Bundled short options: `-Atc SQL` is -A -t -c SQL; `-hdb` is -h db.
            for at in range(1, len(tok)):
                if f"-{tok[at]}" in PSQL_VALUE:
                    name, value = f"-{tok[at]}", tok[at + 1 :] or None
                    break
        if name in PSQL_VALUE:
            if value is None:
                value = next(it, "")
            if PSQL_VALUE[name]:
                options[PSQL_VALUE[name]] = value
        elif not tok.startswith("-"):
            positional.append(tok)
    return options, positional


def _connection(value: str) -> dict[str, str]:
    """What a literal connection string names: `postgresql://user@host:port/db` or
    `host=... port=... dbname=... user=...` (conninfo)."""
    found: dict[str, str] = {}
    if URI.match(value):
        parts = urlsplit(value)
        try:
            port = str(parts.port) if parts.port else ""
        except ValueError:
            port = ""
        found = {
            "host": unquote(parts.hostname or ""),
            "port": port,
            "user": unquote(parts.username or ""),
            "dbname": unquote(parts.path.lstrip("/")),
        }
    elif CONNINFO.match(value):
        for m in CONNINFO_PAIR.finditer(value):
            key = {"hostaddr": "host"}.get(m.group(1), m.group(1))
            if key in {"host", "port", "user", "dbname"}:
                found.setdefault(key, m.group(2).strip("'"))
    return {k: v for k, v in found.items() if v}


def recognise_psql(call: Call) -> Binding:
    """`psql ... -c "SQL"` (or a heredoc). Its database, in this order: a `${NAME}`
    given as the connection (`psql "${REPLICA_URL}"`, `-d "${NAME}"`); a host
    (`-h HOST`, `--host=HOST`, a literal `postgresql://user@HOST/db` or
    `host=HOST` conninfo), bound through TARGET_PG_HOSTS when it runs; otherwise
    DATABASE_URL. A host written as a `${NAME}` is not a database we can name: the
    command stays manual."""
    tokens, text, service = call.tokens, call.text, call.service
    manual = Binding(MANUAL, None, brace_parameters(text), variables_in(text), {})
    options, positional = _psql_options(tokens[1:])
    if "file" in options:
        return manual
    target = None
    connection: dict[str, str] = {}
    for given in [options.get("dbname"), *positional[:1]]:
        if not given:
            continue
        if VARIABLE.fullmatch(given.strip()):
            target = target or target_of(given, "DATABASE_URL")
        elif URI.match(given) or CONNINFO.match(given):
            connection = {**_connection(given), **connection}
        elif "dbname" not in connection:
            connection["dbname"] = given
    if len(positional) > 1 and "user" not in options:
        connection.setdefault("user", positional[1])
    for key in ("host", "port", "user"):
        if options.get(key):
            connection[key] = options[key]
    sql = options.get("command")
    if sql is None:
        sql = heredoc_body(text)
    if not sql or not sql.strip():
        return manual
    host = connection.get("host", "")
    extra: dict[str, str] = {
        "user": connection.get("user", ""),
        "service": service or "",
    }
    if target is None and host:
        if "$" in host or host.startswith("/"):
            return manual  # a host in a variable, or a socket directory
        binding = recognise_sql(sql, "", **extra)
        if binding.executor:
            binding.spec.update(
                {
                    "target_host": host.lower(),
                    "target_map": targets.PG_HOSTS,
                    **{
                        f"target_{k}": connection[k]
                        for k in ("port", "dbname")
                        if connection.get(k)
                    },
                }
            )
    else:
        binding = recognise_sql(sql, target or "DATABASE_URL", **extra)
    binding.variables = unique([*binding.variables, *variables_in(text)])
    return binding
