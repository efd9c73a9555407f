"""The one Markdown configuration: the parser and the page renderer must agree on
where code blocks are, so both build their parser here."""

from markdown_it import MarkdownIt

SHELL_FENCES = {"bash", "sh", "shell", "zsh", "ksh"}
CONSOLE_FENCES = {"console", "shell-session", "shellsession", "terminal"}
SQL_FENCES = {"sql", "psql", "postgres", "postgresql", "pgsql", "plpgsql"}


def make_markdown() -> MarkdownIt:
    # Raw HTML in a runbook is shown as text, never passed through.
    return MarkdownIt("commonmark", {"html": False, "linkify": True}).enable(
        ["table", "strikethrough", "linkify"]
    )


def fence_language(info: str) -> str:
    """The fence's language as the importer reports it (`sh` -> `bash`)."""
    word = (
        (info or "").strip().split(maxsplit=1)[0].lower()
        if (info or "").strip()
        else ""
    )
    word = word.strip("{}.")
    if word in SHELL_FENCES or word in CONSOLE_FENCES:
        return "bash"
    if word in SQL_FENCES:
        return "sql"
    return word
