"""Recognise a command: which executor family runs it, probe or action, and which
parameters a responder must type. Anything not recognised is a manual command."""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from urllib.parse import SplitResult, urlsplit

from .split import HEREDOC, _is_escape_string, split_sql, split_top_level
from .types import ACTION, MANUAL, PROBE, Binding

SHELL_LANGUAGES = {
    "bash",
    "sh",
    "shell",
    "zsh",
    "console",
    "shell-session",
    "shellsession",
}

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# `{userId}`, `{previous-sha}`, but never `${NAME}` (a target variable) or JSON.
BRACE_PARAM = re.compile(r"(?<![$\w{])\{([A-Za-z_][\w.-]*)\}(?!\})")
PATH_PARAM = re.compile(r"(?:^|/):([A-Za-z_]\w*)")
SQL_POSITIONAL = re.compile(r"\$(\d+)")
HTTP_LINE = re.compile(
    r"^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)\s+((?:https?://|/)\S*)(?:\s+(\S.*))?$",
    re.S,
)

# Programs whose inline mention (`flyctl restart`) is a whole command.
KNOWN_PROGRAMS = {
    "aws",
    "az",
    "certbot",
    "curl",
    "df",
    "dig",
    "docker",
    "docker-compose",
    "du",
    "fly",
    "flyctl",
    "free",
    "gcloud",
    "git",
    "helm",
    "heroku",
    "journalctl",
    "kill",
    "kubectl",
    "migrate",
    "nc",
    "nginx",
    "nslookup",
    "openssl",
    "pg_dump",
    "pg_isready",
    "pg_restore",
    "ping",
    "ps",
    "psql",
    "railway",
    "redis-cli",
    "s3cmd",
    "scp",
    "service",
    "ssh",
    "sudo",
    "supervisorctl",
    "swaks",
    "systemctl",
    "terraform",
    "top",
    "traceroute",
    "vacuumdb",
    "wrangler",
}

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
SQL_DOLLAR_TAG = re.compile(r"\$\w*\$")
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
BASE_VARIABLE = re.compile(r"^\$\{([A-Za-z_]\w*)\}")
CURL_URL = re.compile(r"^(?:https?://|\$\{[A-Za-z_]\w*\})")
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=.*")
SQL_KEYWORDS = {"null", "true", "false", "default", "current_user", "session_user"}
SQL_STATEMENT_START = re.compile(
    r"^(SELECT|SHOW|EXPLAIN|WITH|UPDATE|INSERT|DELETE|VACUUM|ANALYZE|DROP|ALTER|CREATE|"
    r"TRUNCATE|REINDEX|GRANT|REVOKE|SET|RESET|CLUSTER|REFRESH|LOCK|COPY)\b",
    re.I,
)

REDIS_PROBES = {
    "PING",
    "INFO",
    "LLEN",
    "GET",
    "MGET",
    "EXISTS",
    "TTL",
    "PTTL",
    "TYPE",
    "STRLEN",
    "HGET",
    "HGETALL",
    "HLEN",
    "HKEYS",
    "HMGET",
    "SCARD",
    "SMEMBERS",
    "SISMEMBER",
    "ZCARD",
    "ZRANGE",
    "ZSCORE",
    "LRANGE",
    "LINDEX",
    "XLEN",
    "XINFO",
    "DBSIZE",
    "SCAN",
    "KEYS",
    "TIME",
    "ROLE",
    "LASTSAVE",
    "ECHO",
    "CONFIG GET",
    "CLIENT LIST",
    "CLIENT INFO",
    "SLOWLOG GET",
    "SLOWLOG LEN",
    "MEMORY USAGE",
    "MEMORY STATS",
    "MEMORY DOCTOR",
    "LATENCY LATEST",
    "LATENCY DOCTOR",
    "LATENCY HISTORY",
    "CLUSTER INFO",
    "CLUSTER NODES",
    "OBJECT ENCODING",
    "OBJECT FREQ",
    "OBJECT IDLETIME",
    "PUBSUB CHANNELS",
    "PUBSUB NUMSUB",
}
REDIS_TWO_WORD = {
    "CONFIG",
    "CLIENT",
    "SLOWLOG",
    "MEMORY",
    "LATENCY",
    "CLUSTER",
    "OBJECT",
    "PUBSUB",
    "SCRIPT",
    "ACL",
    "DEBUG",
    "FUNCTION",
    "MODULE",
    "XINFO",
}
REDIS_MODES = {
    "--latency",
    "--latency-history",
    "--latency-dist",
    "--bigkeys",
    "--memkeys",
    "--stat",
    "--scan",
    "--hotkeys",
}
REDIS_OPTS_WITH_VALUE = {
    "-h",
    "-p",
    "-a",
    "-u",
    "-n",
    "-i",
    "-r",
    "-d",
    "-s",
    "--user",
    "--pass",
    "--pattern",
    "--count",
    "--cacert",
    "--cert",
    "--key",
    "--sni",
    "-x",
    "--memkeys-samples",
}


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def variables_in(text: str) -> list[str]:
    return _unique(VARIABLE.findall(text))


def brace_parameters(text: str) -> list[str]:
    return _unique(BRACE_PARAM.findall(text))


def target_of(value: str | None, default: str) -> str:
    """`"${DATABASE_URL}"` -> DATABASE_URL; anything else keeps the default name."""
    if value and (m := VARIABLE.fullmatch(value.strip())):
        return m.group(1)
    return default


# shlex builds each token one character at a time by string concatenation, which is
# quadratic in a token's length (a 320 KB quoted argument took 0.75 s, a megabyte
# several seconds). Longer commands are not tokenised: they stay manual (copyable).
SHELL_TOKENS_MAX = 64 * 1024


def _tokens(text: str) -> list[str] | None:
    if len(text) > SHELL_TOKENS_MAX:
        return None
    try:
        return shlex.split(text.replace("\\\n", " "), comments=False, posix=True)
    except ValueError:
        return None


# --- SQL ------------------------------------------------------------------------------


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
            escapes = _is_escape_string(sql, start)
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
    return _unique(params), hints


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
        variables=_unique([target, *variables_in(sql)]),
        spec=spec,
    )


def looks_like_sql_statement(text: str) -> bool:
    return bool(SQL_STATEMENT_START.match(text.strip())) and text.strip().endswith(";")


# --- HTTP -----------------------------------------------------------------------------


def url_parameters(url: str) -> list[str]:
    params = brace_parameters(url)
    path = url
    if "://" in url:
        parts = urlsplit(url.replace("{", "%7B").replace("}", "%7D"))
        path = parts.path
    params += PATH_PARAM.findall(path)
    return _unique(params)


def _http_binding(
    method: str,
    url: str,
    headers: dict[str, str],
    body: str | None,
    text: str,
    **extra: object,
) -> Binding:
    method = method.upper()
    spec: dict = {"method": method, "url": url, "headers": headers}
    if body is not None:
        spec["body"] = body
    spec.update({k: v for k, v in extra.items() if v})
    if url.startswith("/"):
        spec["path"] = url
    elif base := BASE_VARIABLE.match(url):
        spec["base_variable"] = base.group(1)  # `${ES_URL}/_cluster/health`
    else:
        spec["host"] = (
            urlsplit(url.replace("{", "%7B").replace("}", "%7D")).hostname or ""
        )
    return Binding(
        kind=PROBE if method in {"GET", "HEAD", "OPTIONS"} else ACTION,
        executor="http",
        parameters=url_parameters(url),
        variables=variables_in(text),
        spec=spec,
    )


def recognise_curl(tokens: list[str], text: str) -> Binding:
    method: str | None = None
    headers: dict[str, str] = {}
    body: str | None = None
    url: str | None = None
    follow = False
    auth = None
    get_with_data = False
    it = iter(tokens[1:])
    for tok in it:
        if tok in {"-X", "--request"}:
            method = next(it, "GET")
        elif tok.startswith("-X") and len(tok) > 2:
            method = tok[2:]
        elif tok in {"-H", "--header"}:
            name, _, value = next(it, "").partition(":")
            headers[name.strip()] = value.strip()
        elif tok in {"-d", "--data", "--data-raw", "--data-binary", "--data-ascii"}:
            body = next(it, "")
        elif tok == "--json":
            body = next(it, "")
            headers.setdefault("Content-Type", "application/json")
            headers.setdefault("Accept", "application/json")
        elif tok in {"-I", "--head"}:
            method = "HEAD"
        elif tok in {"-G", "--get"}:
            get_with_data = True
        elif tok in {"-L", "--location"}:
            follow = True
        elif tok in {
            "-u",
            "--user",
            "-o",
            "--output",
            "-m",
            "--max-time",
            "-w",
            "--write-out",
            "--connect-timeout",
            "-A",
            "--user-agent",
            "-e",
            "--referer",
            "-b",
            "--cookie",
            "--url",
            "-F",
            "--form",
        }:
            value = next(it, "")
            if tok == "--url":
                url = value
            elif tok in {"-u", "--user"}:
                auth = value
            elif tok in {"-F", "--form", "-o", "--output"}:
                # Uploads and output files belong on a person's machine.
                return Binding(
                    kind=MANUAL,
                    variables=variables_in(text),
                    parameters=brace_parameters(text),
                )
        elif tok.startswith("-"):
            continue
        elif url is None:
            url = tok
    if not url or not CURL_URL.match(url):
        return Binding(
            kind=MANUAL, variables=variables_in(text), parameters=brace_parameters(text)
        )
    if method is None:
        method = "POST" if body is not None and not get_with_data else "GET"
    return _http_binding(
        method, url, headers, body, text, follow_redirects=follow, basic_auth=auth
    )


def recognise_http_line(text: str) -> Binding | None:
    """`PATCH /admin/crawler/sources/:id {"isactive": false}`: a method, a path or
    URL, and an optional JSON body."""
    m = HTTP_LINE.match(text.strip())
    if not m:
        return None
    body = m.group(3)
    if body is not None:
        body = body.strip()
        try:
            json.loads(body)
        except ValueError:
            if not body.startswith(("{", "[")):
                return None
    return _http_binding(m.group(1), m.group(2), {}, body, text)


# --- redis, migrate, disk, s3, smtp -------------------------------------------------------


def recognise_redis(tokens: list[str], text: str, grep: dict | None) -> Binding:
    target, host, mode, interval = "REDIS_URL", None, None, None
    args: list[str] = []
    it = iter(tokens[1:])
    for tok in it:
        if args:
            args.append(tok)
        elif tok in REDIS_MODES:
            mode = tok.lstrip("-")
        elif tok in REDIS_OPTS_WITH_VALUE:
            value = next(it, "")
            if tok == "-u":
                target = target_of(value, "REDIS_URL")
            elif tok == "-h":
                host = value
            elif tok == "-i":
                interval = value
        elif tok.startswith("-"):
            continue
        else:
            args.append(tok)
    spec: dict = {"target": target}
    if host:
        spec["host"] = host
    if grep:
        spec["filter"] = grep
    variables = _unique([target, *variables_in(text)])
    if mode:
        spec.update(
            {"mode": mode, "interval": interval} if interval else {"mode": mode}
        )
        return Binding(PROBE, "redis", brace_parameters(text), variables, spec)
    if not args:
        return Binding(MANUAL, None, [], variables_in(text), {})  # interactive session
    name = args[0].upper()
    if name in REDIS_TWO_WORD and len(args) > 1:
        name = f"{name} {args[1].upper()}"
    spec.update({"command": name, "args": args})
    kind = PROBE if name in REDIS_PROBES else ACTION
    return Binding(kind, "redis", brace_parameters(" ".join(args)), variables, spec)


def recognise_migrate(tokens: list[str], text: str) -> Binding:
    target, path = "DATABASE_URL", None
    rest: list[str] = []
    it = iter(tokens[1:])
    for tok in it:
        if tok in {"-database", "--database"}:
            target = target_of(next(it, ""), "DATABASE_URL")
        elif tok in {"-path", "--path", "-source", "--source"}:
            path = next(it, "")
        elif tok.startswith("-"):
            continue
        else:
            rest.append(tok)
    if not rest or rest[0] not in {"version", "force", "up", "down", "goto", "drop"}:
        return Binding(MANUAL, None, brace_parameters(text), variables_in(text), {})
    sub, argument = rest[0], (rest[1] if len(rest) > 1 else None)
    spec = {"target": target, "subcommand": sub, "path": path}
    if argument is not None:
        spec["argument"] = argument
    kind = PROBE if sub == "version" else ACTION
    return Binding(
        kind,
        "migrate",
        brace_parameters(text),
        _unique([target, *variables_in(text)]),
        spec,
    )


def recognise_disk(tokens: list[str], text: str) -> Binding:
    tool = tokens[0]
    flags = [t for t in tokens[1:] if t.startswith("-")]
    paths = [t for t in tokens[1:] if not t.startswith("-")]
    if tool == "du" and not paths:
        paths = ["."]
    spec = {"tool": tool, "paths": paths, "human": any("h" in f for f in flags)}
    return Binding(PROBE, "disk", brace_parameters(text), variables_in(text), spec)


def recognise_aws(tokens: list[str], text: str) -> Binding:
    endpoint = None
    words: list[str] = []
    opts: dict[str, str] = {}
    it = iter(tokens[1:])
    for tok in it:
        if tok.startswith("--"):
            value = next(it, "")
            if tok == "--endpoint-url":
                endpoint = value
            opts[tok[2:]] = value
        else:
            words.append(tok)
    spec: dict = {"endpoint": endpoint} if endpoint else {}
    if words[:2] == ["s3api", "head-bucket"] and "bucket" in opts:
        spec.update({"operation": "head_bucket", "bucket": opts["bucket"]})
    elif words[:2] == ["s3", "ls"]:
        location = words[2] if len(words) > 2 else ""
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        spec.update({"operation": "list", "bucket": bucket, "prefix": prefix})
    else:
        return Binding(MANUAL, None, brace_parameters(text), variables_in(text), {})
    return Binding(PROBE, "s3", brace_parameters(text), variables_in(text), spec)


def _option_value(tokens: list[str], name: str) -> str | None:
    at = tokens.index(name) if name in tokens else -1
    return tokens[at + 1] if 0 <= at < len(tokens) - 1 else None


def recognise_smtp(tokens: list[str], text: str) -> Binding | None:
    """`openssl s_client -starttls smtp -connect host:port` and `swaks --quit-after`:
    connectivity probes. Anything that sends mail stays manual."""
    if tokens[0] == "openssl" and "s_client" in tokens and "smtp" in tokens:
        address, starttls = _option_value(tokens, "-connect"), True
    elif tokens[0] == "swaks" and "--quit-after" in tokens:
        address, starttls = _option_value(tokens, "--server"), "-tls" in tokens
    else:
        return None
    if not address:
        return None
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "")
    spec = {
        "host": host,
        "port": int(port) if port.isdigit() else 25,
        "starttls": starttls,
    }
    return Binding(PROBE, "smtp", [], variables_in(text), spec)


# --- shell dispatch ---------------------------------------------------------------------


def _unwrap(tokens: list[str]) -> tuple[list[str], str | None]:
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


def _grep_filter(stage: str) -> dict | None:
    tokens = _tokens(stage)
    if not tokens or tokens[0] not in {"grep", "egrep"}:
        return None
    flags = [t for t in tokens[1:] if t.startswith("-")]
    words = [t for t in tokens[1:] if not t.startswith("-")]
    if len(words) != 1:
        return None
    return {
        "pattern": words[0],
        "ignore_case": any("i" in f for f in flags),
        "invert": any("v" in f for f in flags),
        "regex": tokens[0] == "egrep" or any("E" in f for f in flags),
    }


def _psql(tokens: list[str], text: str, service: str | None) -> Binding:
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
        sql = _heredoc_body(text)
    if not sql or not sql.strip():
        return Binding(MANUAL, None, brace_parameters(text), variables_in(text), {})
    binding = recognise_sql(sql, target, user=user or "", service=service or "")
    binding.variables = _unique([*binding.variables, *variables_in(text)])
    return binding


def _heredoc_body(text: str) -> str | None:
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


def recognise_shell(text: str) -> Binding:
    manual = Binding(MANUAL, None, brace_parameters(text), variables_in(text), {})
    joined = text.replace("\\\n", " ")
    if "<<" in joined and joined.lstrip().startswith(("psql", "docker", "sudo")):
        first_line, _, _ = joined.partition("\n")
        tokens = _tokens(first_line.split("<<")[0])
        if tokens:
            tokens, service = _unwrap(tokens)
            if tokens and tokens[0] == "psql":
                return _psql(tokens, text, service)
        return manual
    if len(split_top_level(joined, ("&&", "||", ";"))) > 1:
        return manual
    stages = split_top_level(joined, ("|",))
    grep = None
    if len(stages) > 1:
        grep = _grep_filter(stages[1]) if len(stages) == 2 else None
        if grep is None:
            return manual
    tokens = _tokens(stages[0])
    if not tokens:
        return manual
    tokens, service = _unwrap(tokens)
    if not tokens:
        return manual
    program = tokens[0].rsplit("/", 1)[-1]
    tokens = [program, *tokens[1:]]
    binding: Binding | None = None
    if program == "curl":
        binding = recognise_curl(tokens, text)
    elif program == "psql":
        binding = _psql(tokens, text, service)
    elif program == "redis-cli":
        return recognise_redis(tokens, text, grep)
    elif program == "migrate":
        binding = recognise_migrate(tokens, text)
    elif program in {"df", "du"}:
        binding = recognise_disk(tokens, text)
    elif program == "aws":
        binding = recognise_aws(tokens, text)
    elif program in {"openssl", "swaks"}:
        binding = recognise_smtp(tokens, text)
    if binding is None or binding.executor is None:
        return binding or manual
    if grep:
        binding.spec["filter"] = grep
    return binding


def recognise(text: str, language: str) -> Binding:
    """Bind one command (as split from its block) to an executor, or to manual."""
    if language == "sql":
        return recognise_sql(text)
    if language == "http":
        return recognise_http_line(text) or Binding()
    if language in SHELL_LANGUAGES:
        return recognise_http_line(text) or recognise_shell(text)
    return Binding()


def recognise_inline(code: str) -> Binding | None:
    """Inline code that is a whole command: an HTTP method and path, a known program
    with arguments, or a complete SQL statement. A bare name is not a command."""
    code = code.strip()
    if binding := recognise_http_line(code):
        return binding
    if looks_like_sql_statement(code):
        return recognise_sql(code)
    tokens = _tokens(code)
    if tokens and len(tokens) >= 2 and tokens[0] in KNOWN_PROGRAMS:
        return recognise_shell(code)
    return None


def recognise_comment(comment: str) -> Binding | None:
    """A comment that is an HTTP request (`# PUT /admin/settings {...}`)."""
    return recognise_http_line(comment)


def resolve_http_paths(bindings: list[Binding]) -> None:
    """Give path-only HTTP commands (`PUT /admin/settings`) the base URL that the
    runbook's own curl commands use for the same API (`https://api.../api/v1`), and
    that curl's Authorization header: the runbook writes it once, the API wants it
    on every admin call."""
    sources = [b for b in bindings if b.executor == "http" and "host" in b.spec]
    if not sources:
        return
    parsed = [
        (b, urlsplit(b.spec["url"].replace("{", "%7B").replace("}", "%7D")))
        for b in sources
    ]
    # The most used host; on a tie, the first one the runbook uses.
    common = Counter((p.scheme, p.netloc) for _, p in parsed).most_common(1)[0][0]
    # Each `/segment/` of a source's path -> the first source (in runbook order)
    # whose path has it after a prefix, and where its first occurrence starts. One
    # pass over the sources instead of one per path-only command: 1,000 playbooks
    # made that a million path searches.
    by_segment: dict[str, tuple[Binding, SplitResult, int]] = {}
    for candidate, parts in parsed:
        slashes = [i for i, ch in enumerate(parts.path) if ch == "/"]
        first_seen: dict[str, int] = {}
        for start, end in zip(slashes, slashes[1:], strict=False):
            first_seen.setdefault(parts.path[start + 1 : end], start)
        for segment, at in first_seen.items():
            if at > 0:
                by_segment.setdefault(segment, (candidate, parts, at))
    for binding in bindings:
        path = binding.spec.get("path") if binding.executor == "http" else None
        if not path:
            continue
        base, source = f"{common[0]}://{common[1]}", None
        found = by_segment.get(path.strip("/").split("/", 1)[0])
        if found is not None:
            source, parts, at = found
            base = f"{parts.scheme}://{parts.netloc}{parts.path[:at]}"
        binding.spec["url"] = base + path
        binding.spec["host"] = urlsplit(base).hostname or ""
        auth = (
            (source.spec.get("headers") or {}).get("Authorization") if source else None
        )
        if auth and not binding.spec.get("headers"):
            binding.spec["headers"] = {"Authorization": auth}
            binding.variables.extend(
                v for v in variables_in(auth) if v not in binding.variables
            )


FOUR_EYES = re.compile(
    r"\b(DELETE|DROP|TRUNCATE)\b|pg_terminate_backend|revoke|FLUSHALL|FLUSHDB", re.I
)


def needs_approval(kind: str, text: str, spec: dict) -> bool:
    """Actions that delete, drop, truncate, terminate backends or revoke sessions
    need a second person by default (an admin can change it per command)."""
    if kind != ACTION:
        return False
    if spec.get("method") == "DELETE":
        return True
    return bool(FOUR_EYES.search(spec.get("sql") or spec.get("url") or text))
