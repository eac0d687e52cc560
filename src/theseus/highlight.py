"""Code blocks for the chat: Pygments tokens as class-only spans, one span per line (numbered by CSS).

The output is escaped here and sanitized again by markup.py, which allows exactly
the span classes listed in SPAN_CLASSES. Line numbers are CSS counters, never
text, so copying a block (or selecting it) gives exactly its source.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import groupby

from markdown_it.common.utils import escapeHtml
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import Comment, Keyword, Name, Number, Operator, String, Token, _TokenType
from pygments.util import ClassNotFound

HIGHLIGHT_LIMIT = 20_000  # characters of one block: a longer one is shown plain, so the work stays bounded
NUMBERED_FROM = 5  # lines: a block at least this long shows line numbers

# Pygments token types and the class their text gets; a type not listed takes its nearest listed parent's.
TOKEN_CLASSES = {
    Keyword: "tok-k", Operator.Word: "tok-k", Name.Builtin: "tok-nb", Name.Function: "tok-nf",
    Name.Class: "tok-nf", Name.Decorator: "tok-nd", Name.Tag: "tok-nt", Name.Attribute: "tok-na",
    String: "tok-s", Number: "tok-m", Comment: "tok-c", Operator: "tok-o",
}
SPAN_CLASSES = frozenset({"line", *TOKEN_CLASSES.values()})


@lru_cache(maxsize=64)
def lexer_for(language: str) -> Lexer | None:
    """Pygments' lexer for a fence's language (None if it knows none), keeping the text exactly as given."""
    try:
        return get_lexer_by_name(language.lower(), stripnl=False, ensurenl=False, stripall=False)
    except ClassNotFound:
        return None


def token_class(ttype: _TokenType) -> str:
    """The class for a token type ("" for plain text)."""
    while ttype not in TOKEN_CLASSES and ttype.parent is not None:
        ttype = ttype.parent
    return TOKEN_CLASSES.get(ttype, "")


def tokens_of(code: str, language: str) -> list[tuple[_TokenType, str]]:
    """Pygments' tokens for the code, or one plain token if the language is unknown, the block too long,
    or the tokens would not give back the code exactly."""
    lexer = lexer_for(language) if language and len(code) <= HIGHLIGHT_LIMIT else None
    tokens = list(lexer.get_tokens(code)) if lexer else []
    return tokens if "".join(value for _, value in tokens) == code else [(Token.Text, code)]


def highlighted_lines(code: str, language: str = "") -> list[str]:
    """The code as escaped HTML, one string per line (no final empty line), with token spans."""
    lines, line = [], []
    for css, group in groupby(tokens_of(code, language), key=lambda token: token_class(token[0])):
        value = "".join(text for _, text in group)
        for number, part in enumerate(value.split("\n")):
            if number:
                lines.append("".join(line))
                line = []
            if part:
                line.append(f'<span class="{css}">{escapeHtml(part)}</span>' if css else escapeHtml(part))
    lines.append("".join(line))
    if len(lines) > 1 and code.endswith("\n"):
        lines.pop()
    return lines


def code_block_html(code: str, language: str = "") -> str:
    """One code block: its language, then the lines (numbered if there are many); the page adds Copy."""
    lines = highlighted_lines(code, language)
    label = f'<div class="code-lang">{escapeHtml(language)}</div>' if language else ""
    pre = '<pre class="numbered">' if len(lines) >= NUMBERED_FROM else "<pre>"
    css = f' class="language-{language}"' if language else ""
    body = "\n".join(f'<span class="line">{line}</span>' for line in lines)
    return f'<div class="code-block">{label}{pre}<code{css}>{body}</code></pre></div>\n'
