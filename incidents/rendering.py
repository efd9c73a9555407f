"""Runbook Markdown -> HTML for the pages.

Rendering happens in two passes so the expensive one can be cached on the text
alone: `compile_markdown` turns Markdown into HTML fragments with a hole for every
code block and a placeholder for every cross-reference; `render_markdown` fills the
holes (a block that holds commands becomes the command cards, any other block stays
highlighted code) and resolves cross-references for the playbook's own revision."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from html import escape

from django.utils.safestring import SafeString, mark_safe
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from .runbook.markdown import fence_language, make_markdown

XREF = re.compile(r"yomira:(playbook|anchor)/([\w-]+)")
SECTION_REF = re.compile(r"§\s*(\d{1,3})")
HOLE = re.compile(r"\x00(\d+)\x00")
LEXER_ALIASES = {"bash": "bash", "sql": "postgresql", "text": "text", "": "text"}


@dataclass(frozen=True)
class CodeBlock:
    index: int
    language: str
    code: str

    @property
    def html(self) -> SafeString:
        return highlight_code(self.code, self.language)


@lru_cache(maxsize=4096)
def highlight_code(code: str, language: str) -> SafeString:
    """Pygments spans (escaped by Pygments) inside our own <pre><code>."""
    try:
        lexer = get_lexer_by_name(LEXER_ALIASES.get(language, language))
    except ClassNotFound:
        lexer = TextLexer()
    spans = pygments_highlight(code, lexer, HtmlFormatter(nowrap=True)).rstrip("\n")
    return mark_safe(f'<pre class="hl"><code>{spans}</code></pre>')


def _render_code(self, tokens, idx, options, env) -> str:  # noqa: ANN001
    token = tokens[idx]
    language = fence_language(token.info) if token.type == "fence" else ""
    env["blocks"].append(
        CodeBlock(len(env["blocks"]), language, token.content.rstrip("\n"))
    )
    return f"\x00{len(env['blocks']) - 1}\x00"


def _render_link_open(self, tokens, idx, options, env) -> str:  # noqa: ANN001
    token = tokens[idx]
    href = token.attrGet("href") or ""
    if href.startswith("#") and len(href) > 1:
        token.attrSet("href", f"yomira:anchor/{href[1:]}")
    else:
        token.attrSet("rel", "noopener noreferrer")
    env["link_depth"] = env.get("link_depth", 0) + 1
    return self.renderToken(tokens, idx, options, env)


def _render_link_close(self, tokens, idx, options, env) -> str:  # noqa: ANN001
    env["link_depth"] = env.get("link_depth", 1) - 1
    return self.renderToken(tokens, idx, options, env)


def _render_text(self, tokens, idx, options, env) -> str:  # noqa: ANN001
    text = escape(tokens[idx].content, quote=False)
    if env.get("link_depth"):
        return text
    # `see §11` links to playbook 11 of the same revision.
    return SECTION_REF.sub(
        lambda m: f'<a href="yomira:playbook/{m.group(1)}">{m.group(0)}</a>', text
    )


@lru_cache(maxsize=1)
def _markdown():  # noqa: ANN202
    md = make_markdown()
    md.add_render_rule("fence", _render_code)
    md.add_render_rule("code_block", _render_code)
    md.add_render_rule("link_open", _render_link_open)
    md.add_render_rule("link_close", _render_link_close)
    md.add_render_rule("text", _render_text)
    return md


@lru_cache(maxsize=4096)
def compile_markdown(text: str) -> tuple[str | CodeBlock, ...]:
    env: dict = {"blocks": []}
    html = _markdown().render(text, env)
    parts: list[str | CodeBlock] = []
    for i, piece in enumerate(HOLE.split(html)):
        parts.append(env["blocks"][int(piece)] if i % 2 else piece)
    return tuple(parts)


@lru_cache(maxsize=4096)
def compile_inline(text: str) -> str:
    return _markdown().renderInline(text, {"blocks": []})


def resolve_xrefs(html: str, xrefs: dict[str, str]) -> str:
    """Replace cross-reference placeholders with URLs. `xrefs` maps a playbook number
    or anchor to its URL; an unknown anchor stays a plain in-page anchor."""

    def url(m: re.Match) -> str:
        kind, key = m.groups()
        return xrefs.get(key, f"#{key}" if kind == "anchor" else "#")

    return XREF.sub(url, html)


def render_markdown(
    text: str,
    xrefs: dict[str, str] | None = None,
    block_html: Callable[[CodeBlock], str | None] | None = None,
) -> SafeString:
    out: list[str] = []
    for part in compile_markdown(text or ""):
        if isinstance(part, CodeBlock):
            custom = block_html(part) if block_html else None
            out.append(custom if custom is not None else _plain_block(part))
        else:
            out.append(resolve_xrefs(part, xrefs or {}))
    return mark_safe("".join(out))


def render_inline(text: str, xrefs: dict[str, str] | None = None) -> SafeString:
    return mark_safe(resolve_xrefs(compile_inline(text or ""), xrefs or {}))


def _plain_block(block: CodeBlock) -> str:
    label = escape(block.language or "text")
    return (
        f'<div class="codeblock"><div class="codeblock-bar"><span>{label}</span>'
        f'<button type="button" class="copy" data-copy="{escape(block.code)}">Copy</button>'
        f"</div>{block.html}</div>"
    )
