"""Turn untrusted text (chat messages, LLM replies) into HTML that cannot run script.

Fenced code is highlighted (highlight.py); `path:line` references to files of the
knowledge index become links into the source viewer. Those links are put in after
sanitizing, in place of placeholders no text can forge (they carry a fresh nonce).
"""

import html
import re
import secrets
from collections.abc import Callable, Collection
from importlib.util import find_spec

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll

from .highlight import SPAN_CLASSES, code_block_html
from .knowledge.viewer import source_url

_LANGUAGE = re.compile(r"[A-Za-z0-9_+-]{1,30}")
_LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+-]{1,30}")
_HEADINGS = {f"h{level}" for level in range(1, 7)}
_TABLE_PARTS = {"table", "thead", "tbody", "tr", "th", "td"}
_TAGS = {"p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a", "hr", "div", "span"}
_TAGS |= _HEADINGS | _TABLE_PARTS
_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "code": {"class"},
    "pre": {"class"},
    "div": {"class"},
    "span": {"class"},
}
_DIV_CLASSES = {"code-block", "code-lang", "table-wrap"}
# A file path with an extension, a colon and a line (or a range): src/theseus/app.py:42,
# src/theseus/docs/apps/chat.md:3-9
_PATH_REF = re.compile(r"(?<![\w/.-])([\w.-]+(?:/[\w.-]+)*\.[A-Za-z0-9]{1,10}):([1-9][0-9]{0,6})(?:-([1-9][0-9]{0,6}))?"
                       r"(?![\w])")
REF_LIMIT = 50  # distinct paths of one text looked up in the index
IndexedPaths = Callable[[Collection[str]], Collection[str]]  # which of these paths are files of the index


def _language(info: str) -> str:
    """Return the fence's language if it is a plain identifier, else ""."""
    words = unescapeAll(info).split(maxsplit=1)
    return words[0] if words and _LANGUAGE.fullmatch(words[0]) else ""


def _render_fence(self, tokens, idx, options, env) -> str:
    return code_block_html(tokens[idx].content, _language(tokens[idx].info))


def _render_indented_code(self, tokens, idx, options, env) -> str:
    return code_block_html(tokens[idx].content)


def _render_table_open(self, tokens, idx, options, env) -> str:
    """A table inside a box of its own width: a wide one scrolls there, not the whole message."""
    return '<div class="table-wrap">' + self.renderToken(tokens, idx, options, env)


def _render_table_close(self, tokens, idx, options, env) -> str:
    return self.renderToken(tokens, idx, options, env).rstrip("\n") + "</div>\n"


class _SourceRefs:
    """The `path:line` references of one text that name indexed files, as placeholders until sanitized."""

    def __init__(self, indexed: Collection[str]):
        self.indexed, self.nonce, self.links = set(indexed), secrets.token_hex(8), []
        self.placeholder = re.compile(f"srcref{self.nonce}n([0-9]+)e")

    def hold(self, match: re.Match, code: bool) -> str:
        """A placeholder for the link to this reference."""
        self.links.append((match[1], int(match[2]), int(match[3]) if match[3] else None, code))
        return f"srcref{self.nonce}n{len(self.links) - 1}e"

    def link(self, number: re.Match) -> str:
        """The link that replaces a placeholder."""
        path, line, end, code = self.links[int(number[1])]
        label = html.escape(f"{path}:{line}" + (f"-{end}" if end else ""))
        return (f'<a class="source-ref" href="{html.escape(source_url(path, line, end))}" target="_blank" '
                f'rel="noopener" title="Open in the source viewer">{f"<code>{label}</code>" if code else label}</a>')

    def put_links(self, sanitized: str) -> str:
        return self.placeholder.sub(self.link, sanitized) if self.links else sanitized


def _render_text(self, tokens, idx, options, env) -> str:
    """Text, with its references to indexed files held for linking."""
    token, refs = tokens[idx], env.get("refs")
    if refs is None or not token.meta.get("refs"):
        return escapeHtml(token.content)
    parts, last = [], 0
    for match in _PATH_REF.finditer(token.content):
        if match[1] in refs.indexed:
            parts += [escapeHtml(token.content[last:match.start()]), refs.hold(match, code=False)]
            last = match.end()
    return "".join(parts) + escapeHtml(token.content[last:])


def _render_code_inline(self, tokens, idx, options, env) -> str:
    """Inline code; a whole `path:line` of an indexed file links to the source viewer."""
    token, refs = tokens[idx], env.get("refs")
    match = _PATH_REF.fullmatch(token.content) if refs is not None and token.meta.get("refs") else None
    if match and match[1] in refs.indexed:
        return refs.hold(match, code=True)
    return f"<code>{escapeHtml(token.content)}</code>"


def _ref_candidates(tokens) -> list:
    """The inline tokens (outside links) that mention a `path:line`, marked for the renderer."""
    marked = []
    for block in tokens:
        depth = 0
        for token in block.children or ():
            depth += {"link_open": 1, "link_close": -1}.get(token.type, 0)
            if depth == 0 and token.type in ("text", "code_inline") and _PATH_REF.search(token.content):
                token.meta["refs"] = True
                marked.append(token)
    return marked


def _source_refs(tokens, indexed: IndexedPaths) -> "_SourceRefs | None":
    """The references to link in these tokens: at most REF_LIMIT distinct paths, looked up at once."""
    paths = []
    for token in _ref_candidates(tokens):
        paths += [m[1] for m in _PATH_REF.finditer(token.content) if m[1] not in paths]
        if len(paths) >= REF_LIMIT:
            break
    found = set(indexed(paths[:REF_LIMIT])) if paths else set()
    return _SourceRefs(found) if found else None


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Allow `class` only as the code block's own classes: on div, span, pre (`numbered`) and code."""
    if attribute != "class":
        return value
    if tag == "div":
        return value if value in _DIV_CLASSES else None
    if tag == "span":
        return value if value in SPAN_CLASSES else None
    if tag == "pre":
        return value if value == "numbered" else None
    return value if tag == "code" and _LANGUAGE_CLASS.fullmatch(value) else None


def _markdown_parser() -> MarkdownIt:
    """CommonMark with tables and strikethrough; raw HTML and images are not parsed."""
    linkify = find_spec("linkify_it") is not None
    md = MarkdownIt("commonmark", {"html": False, "linkify": linkify, "typographer": False})
    md.enable(["table", "strikethrough"] + (["linkify"] if linkify else []))
    md.disable("image")  # `![alt](src)` then shows as "!" plus a link instead of vanishing
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_indented_code)
    md.add_render_rule("table_open", _render_table_open)
    md.add_render_rule("table_close", _render_table_close)
    md.add_render_rule("text", _render_text)
    md.add_render_rule("code_inline", _render_code_inline)
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


def render_markdown(text: str | None, indexed: IndexedPaths | None = None) -> str:
    """Render untrusted markdown to sanitized HTML; raw HTML in it is shown as text. With `indexed` (which of
    some paths are files of the knowledge index), `path:line` references to those files link to the viewer."""
    if not text:
        return ""
    tokens = _MARKDOWN.parse(text)
    refs = _source_refs(tokens, indexed) if indexed else None
    rendered = _sanitize(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {"refs": refs}))
    return refs.put_links(rendered) if refs else rendered


def render_plain(text: str | None) -> str:
    """Escape untrusted text for HTML, turning newlines into <br>."""
    if not text:
        return ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "<br>".join(html.escape(line) for line in lines)


def escape_markdown(text: str) -> str:
    """Text shown as itself in markdown (a value from the data: no emphasis, links or lists from it)."""
    return "".join(f"\\{c}" if c in "\\`*_{}[]()#+-.!<>|~" else c for c in text)
