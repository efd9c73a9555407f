"""Recognise a command: which family runs it, probe or action, and which parameters
a responder must type. The families answer; this module only decides whom to ask.
Anything no family claims is a manual command (a copy button)."""

from __future__ import annotations

from .binding import MANUAL, Binding
from .families import by_program, families
from .families.sql.recognise import is_config
from .family import Call
from .shell import (
    SHELL_LANGUAGES,
    grep_filter,
    split_top_level,
    tokens,
    unwrap,
)
from .text import brace_parameters, variables_in

# Programs whose inline mention (`flyctl restart`) is a whole command, beyond those
# a family reads.
OTHER_PROGRAMS = {
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


def known_programs() -> frozenset[str]:
    return frozenset(OTHER_PROGRAMS) | frozenset(by_program())


def _manual(text: str) -> Binding:
    return Binding(MANUAL, None, brace_parameters(text), variables_in(text), {})


def recognise_shell(text: str) -> Binding:
    """One shell command: unwrapped, then given to the family that reads its
    program. Chains (`&&`, `;`) and pipes other than one `| grep` stay manual."""
    manual = _manual(text)
    joined = text.replace("\\\n", " ")
    if "<<" in joined and joined.lstrip().startswith(("psql", "docker", "sudo")):
        first_line, _, _ = joined.partition("\n")
        words = tokens(first_line.split("<<")[0])
        if words:
            words, service = unwrap(words)
            reader = by_program().get(words[0]) if words else None
            if reader is not None and words[0] == "psql":
                return reader.recognise(Call(words, text, service)) or manual
        return manual
    if len(split_top_level(joined, ("&&", "||", ";"))) > 1:
        return manual
    stages = split_top_level(joined, ("|",))
    grep = None
    if len(stages) > 1:
        grep = grep_filter(stages[1]) if len(stages) == 2 else None
        if grep is None:
            return manual
    words = tokens(stages[0])
    if not words:
        return manual
    if any(word.lstrip("0123456789&").startswith((">", "<")) for word in words):
        # `> backup.yaml` writes a file a later step reads, `< dump.sql` reads
        # one from the author's machine: a person runs those.
        return manual
    words, service = unwrap(words)
    if not words:
        return manual
    program = words[0].rsplit("/", 1)[-1]
    reader = by_program().get(program)
    if reader is None:
        return manual
    binding = reader.recognise(Call([program, *words[1:]], text, service, grep))
    if binding is None or binding.executor is None:
        return binding or manual
    if grep:
        binding.spec["filter"] = grep
    return binding


def _claimed(text: str, where: str) -> Binding | None:
    for each in families():
        if (binding := each.recognise_text(text, where)) is not None:
            return binding
    return None


def recognise(text: str, language: str) -> Binding:
    """Bind one command (as split from its block) to a family, or to manual."""
    for each in families():
        if language in each.languages:
            return each.recognise_text(text, language) or Binding()
    if language in SHELL_LANGUAGES:
        return _claimed(text, "shell") or recognise_shell(text)
    return Binding()


# The language of an SQL fence that holds configuration lines instead of SQL.
CONFIG_LANGUAGE = "ini"


def fence_is_config(content: str) -> bool:
    """An SQL fence (```sql, ```postgresql...) whose every line is a postgresql.conf
    setting (`wal_level = replica`, `shared_buffers = '4GB'  # 25% of RAM`) or a
    comment: a file's contents to copy, never statements to send. The importer
    gives such a fence the language CONFIG_LANGUAGE and one manual command.
    `SET x = y;` and `ALTER SYSTEM SET ...` are statements, not configuration."""
    return is_config(content)


def recognise_inline(code: str) -> Binding | None:
    """Inline code that is a whole command: a line a family claims (an HTTP request
    line, a complete SQL statement) or a known program with arguments. A bare name
    is not a command."""
    code = code.strip()
    if binding := _claimed(code, "inline"):
        return binding
    words = tokens(code)
    if words and len(words) >= 2 and words[0] in known_programs():
        return recognise_shell(code)
    return None


def wants_body(code: str) -> bool:
    """Inline code a family reads as a request (`PATCH /admin/sources/:id`): the
    runbook often writes its JSON body as the next inline code."""
    binding = _claimed(code, "inline")
    return binding is not None and "method" in binding.spec


def recognise_comment(comment: str) -> Binding | None:
    """A comment that is a command (`# PUT /admin/settings {...}`)."""
    return _claimed(comment, "comment")


def settle(bindings: list[Binding]) -> None:
    """Once every command of a runbook is recognised: each family's last pass."""
    for each in families():
        each.settle(bindings)
