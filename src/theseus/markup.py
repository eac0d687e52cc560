"""Turn untrusted text (chat messages, LLM replies) into HTML that cannot run script."""

import html
import re
from importlib.util import find_spec

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll

_LANGUAGE = re.compile(r"[A-Za-z0-9_+-]{1,30}")
_LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+-]{1,30}")
_HEADINGS = {f"h{level}" for level in range(1, 7)}
_TABLE_PARTS = {"table", "thead", "tbody", "tr", "th", "td"}
_TAGS = {"p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a", "hr", "div"}
_TAGS |= _HEADINGS | _TABLE_PARTS
_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "code": {"class"},
    "pre": {"class"},
    "div": {"class"},
}


def _language(info: str) -> str:
    """Return the fence's language if it is a plain identifier, else ""."""
    words = unescapeAll(info).split(maxsplit=1)
    return words[0] if words and _LANGUAGE.fullmatch(words[0]) else ""


def _code_block(content: str, language: str = "") -> str:
    """HTML for one code block, wrapped so the page can attach a copy button."""
    css = f' class="language-{language}"' if language else ""
    return f'<div class="code-block"><pre><code{css}>{escapeHtml(content)}</code></pre></div>\n'


def _render_fence(self, tokens, idx, options, env) -> str:
    return _code_block(tokens[idx].content, _language(tokens[idx].info))


def _render_indented_code(self, tokens, idx, options, env) -> str:
    return _code_block(tokens[idx].content)


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Allow `class` only as `code-block` on div and `language-xxx` on pre/code."""
    if attribute != "class":
        return value
    if tag == "div":
        return value if value == "code-block" else None
    return value if _LANGUAGE_CLASS.fullmatch(value) else None


def _markdown_parser() -> MarkdownIt:
    """CommonMark with tables and strikethrough; raw HTML and images are not parsed."""
    linkify = find_spec("linkify_it") is not None
    md = MarkdownIt("commonmark", {"html": False, "linkify": linkify, "typographer": False})
    md.enable(["table", "strikethrough"] + (["linkify"] if linkify else []))
    md.disable("image")  # `![alt](src)` then shows as "!" plus a link instead of vanishing
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_indented_code)
    md.add_render_rule("s_open", lambda *_: "<del>")
    md.add_render_rule("s_close", lambda *_: "</del>")
    return md


# Both are immutable configuration, built once: neither keeps state between calls.
_MARKDOWN = _markdown_parser()
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style"},
    attributes=_ATTRIBUTES,
    attribute_filter=_keep_attribute,
    strip_comments=True,
    link_rel="noopener noreferrer nofollow",
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
)


def _sanitize(fragment: str) -> str:
    """Reduce an HTML fragment to the chat allow-list."""
    return _CLEANER.clean(fragment)


def render_markdown(text: str | None) -> str:
    """Render untrusted markdown to sanitized HTML; raw HTML in it is shown as text."""
    if not text:
        return ""
    return _sanitize(_MARKDOWN.render(text))


def render_plain(text: str | None) -> str:
    """Escape untrusted text for HTML, turning newlines into <br>."""
    if not text:
        return ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "<br>".join(html.escape(line) for line in lines)
