"""Tests for theseus.markup: hostile text must never become live HTML, and markdown still renders."""

import sys
from html.parser import HTMLParser

import pytest

from theseus import highlight, markup
from theseus.markup import render_markdown, render_plain

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a", "hr", "div", "span",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
}
FORBIDDEN_TAGS = {
    "script", "iframe", "svg", "img", "style", "object", "embed", "form", "math", "button", "base", "meta",
}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "xlink:href", "srcdoc"}
SAFE_SCHEMES = {"http", "https", "mailto"}
C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
VOID_TAGS = {"br", "hr", "img", "embed", "meta", "base"}
# The only classes rendered markdown may carry, tag by tag (code: language-xxx); written out, so widening is deliberate.
ALLOWED_CLASSES = {
    "div": {"code-block", "code-lang", "table-wrap"},
    "pre": {"numbered"},
    "span": {"line", "tok-k", "tok-nb", "tok-nf", "tok-nd", "tok-nt", "tok-na", "tok-s", "tok-m", "tok-c", "tok-o"},
}


class Element:
    """One start tag seen in rendered HTML, with its attributes and enclosing tags."""

    def __init__(self, tag, attrs, ancestors):
        self.tag, self.attrs, self.ancestors = tag, dict(attrs), ancestors


class Page(HTMLParser):
    """Parse an HTML fragment into elements and visible text (entities decoded)."""

    def __init__(self, markup_html: str):
        super().__init__(convert_charrefs=True)
        self.elements, self.chunks, self.stack = [], [], []
        self.feed(markup_html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append(Element(tag, attrs, tuple(self.stack)))
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.elements.append(Element(tag, attrs, tuple(self.stack)))

    def handle_endtag(self, tag):
        if tag in self.stack:
            del self.stack[len(self.stack) - 1 - self.stack[::-1].index(tag):]

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def find(self, tag: str) -> list[Element]:
        return [element for element in self.elements if element.tag == tag]


def url_scheme(url: str) -> str:
    """The scheme a browser would see: C0/space trimmed, tabs/newlines removed, lower-cased."""
    url = url.strip(C0_AND_SPACE).replace("\t", "").replace("\n", "").replace("\r", "")
    head = url.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return head.split(":", 1)[0].lower() if ":" in head else ""


def assert_safe(html_out: str) -> Page:
    """Fail if the HTML could run script, load a resource or leave the allow-list."""
    assert isinstance(html_out, str)
    page = Page(html_out)
    for element in page.elements:
        assert element.tag not in FORBIDDEN_TAGS, html_out
        assert element.tag in ALLOWED_TAGS, html_out
        for name, value in element.attrs.items():
            assert not name.startswith("on"), html_out
            assert name != "style", html_out
            if name in URL_ATTRIBUTES:
                assert url_scheme(value or "") in SAFE_SCHEMES, html_out
            if name == "class":
                allowed = (value.startswith("language-") if element.tag == "code"
                           else value in ALLOWED_CLASSES.get(element.tag, ()))
                assert allowed, html_out
    return page


HOSTILE = [
    # (markdown typed by a user or produced by the model, text that must still be visible)
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),
    ("<SCRIPT>alert(1)</SCRIPT>", "<SCRIPT>alert(1)</SCRIPT>"),
    ("<scr<script>ipt>alert(1)</script>", "<scr<script>ipt>alert(1)</script>"),
    ("<svg><script>alert(1)</script></svg>", "<svg><script>alert(1)</script></svg>"),
    ("<script\n>alert(1)</script>", "alert(1)"),
    ("<scr\nipt>alert(1)</scr\nipt>", "alert(1)"),
    ("\x00<script>alert(1)</script>", "<script>alert(1)</script>"),
    ("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
    ("<svg onload=alert(1)>", "<svg onload=alert(1)>"),
    ('<iframe src="javascript:alert(1)"></iframe>', "<iframe"),
    ('<a href="javascript:alert(1)">click</a>', '<a href="javascript:alert(1)">click</a>'),
    ('<a href="jav&#x09;ascript:alert(1)">x</a>', "alert(1)"),
    ("[click](javascript:alert(1))", "alert(1)"),
    ("[click](JaVaScRiPt:alert(1))", "alert(1)"),
    ("[click](&#106;avascript:alert(1))", "alert(1)"),
    ("[click](jav&#x09;ascript:alert(1))", "click"),
    ("[click](java\tscript:alert(1))", "alert(1)"),
    ("[click]( javascript:alert(1) )", "alert(1)"),
    ("[click](<javascript:alert(1)>)", "alert(1)"),
    ("[click](\x01javascript:alert(1))", "alert(1)"),
    ("[click](java\u200bscript:alert(1))", "click"),
    ("[click][ref]\n\n[ref]: javascript:alert(1)", "alert(1)"),
    ("[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)", "click"),
    ("[click](data:image/png;base64,iVBORw0KGgo=)", "click"),
    ("[click](vbscript:msgbox(1))", "msgbox(1)"),
    ("[click](file:///etc/passwd)", "click"),
    ("[click](/tasks/1/delete)", "click"),
    ("<javascript:alert(1)>", "<javascript:alert(1)>"),
    ("<JAVASCRIPT:alert(1)>", "<JAVASCRIPT:alert(1)>"),
    ("<vbscript:msgbox(1)>", "<vbscript:msgbox(1)>"),
    ("<data:text/html,<script>alert(1)</script>>", "<script>alert(1)</script>"),
    ('[click](https://example.com "a\\" onmouseover=\\"alert(1)")', "click"),
    ('[click](https://example.com "\\"><script>alert(1)</script>")', "click"),
    ('[x](https://example.com/"onmouseover="alert(1))', "x"),
    ("![x](javascript:alert(1))", "alert(1)"),
    ('![x" onerror="alert(1)](https://example.com/a.png)', 'x" onerror="alert(1)'),
    ('```"onmouseover=alert(1) x\ncode\n```', "code"),
    ('```python" onmouseover="alert(1)\ncode\n```', "code"),
    ("```<script>alert(1)</script>\ncode\n```", "code"),
    ("~~~ javascript:alert(1)\ncode\n~~~", "code"),
    ("<style>body{display:none}</style>", "<style>body{display:none}</style>"),
    ('<div style="background:url(javascript:alert(1))">x</div>', "background:url(javascript:alert(1))"),
    ('<form action="javascript:alert(1)"><button formaction="javascript:alert(1)">go</button></form>', "go"),
    ("<math><mtext><script>alert(1)</script></mtext></math>", "<math>"),
    ('<object data="javascript:alert(1)"></object>', "<object"),
    ('<embed src="javascript:alert(1)">', "<embed"),
    ('<base href="javascript:alert(1)//">', "<base"),
    ("<details open ontoggle=alert(1)>", "ontoggle=alert(1)"),
    ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"),
    ("&#60;img src=x onerror=alert(1)&#62;", "<img src=x onerror=alert(1)>"),
    ("\uff1cscript\uff1ealert(1)\uff1c/script\uff1e", "\uff1cscript\uff1ealert(1)"),
    ("<scr\u200dipt>alert(1)</scr\u200dipt>", "alert(1)"),
    ("<!-- <script>alert(1)</script> -->", "<!-- <script>alert(1)</script> -->"),
    ("<![CDATA[<script>alert(1)</script>]]>", "<script>alert(1)</script>"),
    ("```\n<script>alert(1)</script>", "<script>alert(1)</script>"),
    ("````\n```\n<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
    ("`<script>alert(1)</script>`", "<script>alert(1)</script>"),
    ("    <script>alert(1)</script>", "<script>alert(1)</script>"),
    ("| a | b |\n|---|---|\n| <script>alert(1)</script> | <img src=x onerror=alert(1)> |", "<img src=x"),
    ("> <script>alert(1)</script>", "<script>alert(1)</script>"),
    ("- <img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
    ("**<script>alert(1)</script>**", "<script>alert(1)</script>"),
    ("[<img src=x onerror=alert(1)>](https://example.com)", "<img src=x onerror=alert(1)>"),
    ("https://example.com/<script>alert(1)</script>", "<script>alert(1)</script>"),
]


@pytest.mark.parametrize("text, visible", HOSTILE)
def test_hostile_markdown_renders_inert(text, visible):
    page = assert_safe(render_markdown(text))
    assert visible in page.text


@pytest.mark.parametrize("text", [text for text, _ in HOSTILE])
def test_hostile_plain_text_shows_exactly_what_was_typed(text):
    page = assert_safe(render_plain(text))
    assert {element.tag for element in page.elements} <= {"br"}
    assert page.text == text.replace("\n", "")


def calls_made(function, *args) -> int:
    """How many Python and C function calls `function(*args)` makes: a count of work that no load can skew."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        function(*args)
    finally:
        sys.setprofile(None)
    return count


def repeated(chunk: str, size: int) -> str:
    return chunk * (size // len(chunk))


HOSTILE_CHUNK = "<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)> **b**\n\n"
REPLY_CHUNK = "Some **bold** and a [link](https://example.com).\n\n- item `two`\n\n```python\nprint(1)\n```\n\n"


def test_hostile_200kb_message_is_inert():
    text = repeated(HOSTILE_CHUNK, 200_000)
    page = assert_safe(render_markdown(text))
    assert page.text.count("alert(1)") == 3 * (200_000 // len(HOSTILE_CHUNK))


def test_long_chat_reply_renders_whole():
    text = repeated(REPLY_CHUNK, 200_000)
    page = assert_safe(render_markdown(text))
    assert len(page.find("strong")) == 200_000 // len(REPLY_CHUNK)


@pytest.mark.parametrize("chunk", [HOSTILE_CHUNK, REPLY_CHUNK], ids=["hostile", "reply"])
def test_rendering_cost_grows_linearly_with_the_text(chunk):
    """Twice the text costs about twice the work (counted calls, not seconds), so a long reply stays cheap."""
    small = calls_made(render_markdown, repeated(chunk, 25_000))
    large = calls_made(render_markdown, repeated(chunk, 50_000))
    assert large < 2.5 * small, (small, large)


RAW_HTML = [
    '<img src=x onerror="alert(1)">',
    "<svg onload=alert(1)><circle/></svg>",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<a href="JaVa&#x09;ScRiPt:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="/relative">x</a>',
    '<a href="https://example.com" target="_blank" rel="opener">x</a>',
    '<div class="code-block evil" onclick="alert(1)">x</div>',
    '<pre class="language-py x"><code class="hljs">x</code></pre>',
    '<p style="color:red" id="x" onmouseover="alert(1)">x</p>',
    '<form action="javascript:alert(1)"><button formaction="javascript:alert(1)">go</button></form>',
    "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>x</maction></math>",
    '<object data="javascript:alert(1)"></object><embed src="javascript:alert(1)">',
    "<style>*{display:none}</style><script>alert(1)</script>",
]


@pytest.mark.parametrize("fragment", RAW_HTML)
def test_sanitizer_alone_reduces_raw_html_to_the_allow_list(fragment):
    """Second line of defence: even HTML that markdown-it never emits is made safe."""
    page = assert_safe(markup._sanitize(fragment))
    for link in page.find("a"):
        assert link.attrs["rel"] == "noopener noreferrer nofollow"


@pytest.mark.parametrize(
    "text, tag, inner",
    [
        ("**bold**", "strong", "bold"),
        ("*italic*", "em", "italic"),
        ("~~gone~~", "del", "gone"),
        ("# Title", "h1", "Title"),
        ("###### Small", "h6", "Small"),
        ("> quoted", "blockquote", "quoted"),
        ("use `x = 1` here", "code", "x = 1"),
    ],
)
def test_inline_and_block_markdown(text, tag, inner):
    page = assert_safe(render_markdown(text))
    assert page.find(tag) and inner in page.text


@pytest.mark.parametrize("text, list_tag", [("- a\n- b\n- c", "ul"), ("1. a\n2. b\n3. c", "ol")])
def test_lists(text, list_tag):
    page = assert_safe(render_markdown(text))
    assert len(page.find(list_tag)) == 1
    assert [item.ancestors[-1] for item in page.find("li")] == [list_tag] * 3


def test_table():
    page = assert_safe(render_markdown("| Name | Done |\n|:-----|-----:|\n| milk | yes |"))
    assert [len(page.find(tag)) for tag in ("table", "thead", "tbody", "th", "td")] == [1, 1, 1, 2, 2]
    assert page.find("table")[0].ancestors == ("div",) and page.find("div")[0].attrs == {"class": "table-wrap"}
    assert "Name" in page.text and "milk" in page.text


@pytest.mark.parametrize(
    "text, href",
    [
        ("[site](https://example.com/a?b=1)", "https://example.com/a?b=1"),
        ("[site](http://example.com)", "http://example.com"),
        ("<https://example.com>", "https://example.com"),
        ("<chip@example.com>", "mailto:chip@example.com"),
        ("[mail](mailto:chip@example.com)", "mailto:chip@example.com"),
    ],
)
def test_safe_links_keep_href_and_get_rel(text, href):
    (link,) = assert_safe(render_markdown(text)).find("a")
    assert link.attrs == {"href": href, "rel": "noopener noreferrer nofollow"}


def test_markdown_image_shows_as_link_not_image():
    page = assert_safe(render_markdown("![a cat](https://example.com/cat.png)"))
    assert page.find("a")[0].attrs["href"] == "https://example.com/cat.png"
    assert page.text == "!a cat\n"


@pytest.mark.parametrize(
    "info, language",
    [
        ("python", "python"),
        ("c++", "c++"),
        ("objective-c", "objective-c"),
        ("python {linenos=true}", "python"),
        ("a" * 30, "a" * 30),
        ("a" * 31, None),
        ("", None),
        ('"onmouseover=alert(1)', None),
        ("py<x>", None),
        ("js:alert(1)", None),
        ("python\u200b", None),
    ],
)
def test_fenced_code_block_language_and_wrapper(info, language):
    rendered = render_markdown(f"```{info}\nprint(1 < 2)\n```")
    page = assert_safe(rendered)
    (code,) = page.find("code")
    assert code.ancestors[-2:] == ("div", "pre")
    assert page.find("div")[0].attrs == {"class": "code-block"}
    assert code.attrs.get("class") == (f"language-{language}" if language else None)
    assert page.find("pre")[0].attrs == {}  # one line: no line numbers
    assert code_text(rendered) == "print(1 < 2)"
    assert page.text.strip() == (f"{language}print(1 < 2)" if language else "print(1 < 2)")  # the label first


def code_text(rendered: str) -> str:
    """The text of the first <code> element, as the Copy button takes it (textContent)."""
    inner = rendered.split("<code", 1)[1].split(">", 1)[1].rsplit("</code>", 1)[0]
    return Page(inner).text


def test_indented_code_is_wrapped_too():
    page = assert_safe(render_markdown("    x = 1"))
    assert page.find("code")[0].ancestors[-2:] == ("div", "pre")


@pytest.mark.parametrize("render", [render_markdown, render_plain])
@pytest.mark.parametrize("text", [None, ""])
def test_empty_input_gives_empty_string(render, text):
    assert render(text) == ""


@pytest.mark.parametrize("render", [render_markdown, render_plain])
def test_output_is_deterministic(render):
    text = "**a** [b](https://example.com)\n\n```python\nx\n```\n<script>alert(1)</script>"
    assert render(text) == render(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a<b>\nc", "a&lt;b&gt;<br>c"),
        ("one\r\ntwo\rthree", "one<br>two<br>three"),
        ("**not bold** & \"quoted\"", "**not bold** &amp; &quot;quoted&quot;"),
    ],
)
def test_render_plain(text, expected):
    assert render_plain(text) == expected


# ---- code blocks: highlighted on the server, numbered by CSS, copied exactly ----

PYTHON_SOURCE = ('import os\n\n\n@cache\ndef greet(name: str) -> str:\n    """Say hi."""  # a comment\n'
                 '    return f"hi {name}" * 2 if name else None\n')


def test_a_python_block_is_highlighted_with_class_spans_only():
    rendered = render_markdown(f"```python\n{PYTHON_SOURCE}```")
    page = assert_safe(rendered)
    classes = {element.attrs.get("class") for element in page.find("span")}
    assert {"line", "tok-k", "tok-nf", "tok-nd", "tok-s", "tok-c", "tok-m", "tok-o"} <= classes
    assert "style" not in rendered
    assert [d.attrs["class"] for d in page.find("div")] == ["code-block", "code-lang"]
    assert page.text.startswith("python")  # the language is shown
    assert page.find("pre")[0].attrs == {"class": "numbered"}  # a longer block gets line numbers (CSS)
    assert len([s for s in page.find("span") if s.attrs["class"] == "line"]) == PYTHON_SOURCE.count("\n")
    assert code_text(rendered) == PYTHON_SOURCE.removesuffix("\n")  # what Copy takes: the source, no numbers


@pytest.mark.parametrize("lines, numbered", [(1, False), (4, False), (5, True), (40, True)])
def test_line_numbers_only_for_longer_blocks(lines, numbered):
    source = "".join(f"x{i} = {i}\n" for i in range(lines))
    rendered = render_markdown(f"```python\n{source}```")
    assert (assert_safe(rendered).find("pre")[0].attrs == {"class": "numbered"}) is numbered
    assert code_text(rendered) == source.removesuffix("\n")


@pytest.mark.parametrize("language", ["html", "js", "javascript", "sql", "bash", "json", "c++", "PYTHON"])
def test_other_languages_are_highlighted_and_exact(language):
    source = 'if (a < b && c > "d") { x = 1; } // <b>not bold</b>\n<p class="x">&amp;</p>\n'
    rendered = render_markdown(f"```{language}\n{source}```")
    page = assert_safe(rendered)
    assert code_text(rendered) == source.removesuffix("\n")
    assert not page.find("b") and not page.find("p")
    assert any(s.attrs["class"].startswith("tok-") for s in page.find("span")), rendered


@pytest.mark.parametrize("info", ["nosuchlanguage", ""])
def test_an_unknown_or_missing_language_is_plain_but_wrapped(info):
    rendered = render_markdown(f"```{info}\nx = 'a'\n```")
    page = assert_safe(rendered)
    assert {s.attrs["class"] for s in page.find("span")} == {"line"}
    assert code_text(rendered) == "x = 'a'"


def test_a_huge_block_is_not_highlighted_but_shown_whole():
    source = "x = 1\n" * (highlight.HIGHLIGHT_LIMIT // 6 + 10)
    rendered = render_markdown(f"```python\n{source}```")
    assert "tok-" not in rendered and code_text(rendered) == source.removesuffix("\n")


def test_the_sanitizer_allows_exactly_the_highlighter_classes():
    assert highlight.SPAN_CLASSES == ALLOWED_CLASSES["span"]
    cleaned = markup._sanitize('<span class="evil">a</span><span class="tok-k" style="color:red" onclick="x()">b</span>'
                               '<div class="code-lang hidden">c</div><pre class="numbered x">d</pre>')
    assert_safe(cleaned)
    assert not any(word in cleaned for word in ("evil", "style", "hidden", '"numbered x"'))


FENCE_LANGUAGES = ["python", "html", "js", "nosuchlanguage", ""]


@pytest.mark.parametrize("language", FENCE_LANGUAGES, ids=lambda language: language or "none")
@pytest.mark.parametrize("text", [text for text, _ in HOSTILE])
def test_hostile_text_inside_code_fences_stays_inert_and_exact(text, language):
    rendered = render_markdown(f"``````{language}\n{text}\n``````")  # a longer fence than any in the corpus
    page = assert_safe(rendered)
    assert not page.find("a")
    assert code_text(rendered) == text.replace("\x00", "\ufffd")


# ---- `path:line` references to files of the knowledge index link to the source viewer ----

def indexed_only(*known):
    """A stand-in for the index's lookup that knows only `known`, recording what it was asked."""
    def indexed(paths):
        indexed.calls.append(list(paths))
        return set(paths) & set(known)
    indexed.calls = []
    return indexed


def source_refs(rendered: str) -> list[dict]:
    return [a.attrs for a in Page(rendered).find("a") if a.attrs.get("class") == "source-ref"]


def test_path_line_references_to_indexed_files_link_to_the_viewer():
    text = ("See src/theseus/app.py:42 and `src/theseus/ui.py:7-9`, not other/file.py:3, nor in a link "
            "[src/theseus/app.py:1](https://example.com), nor in code:\n\n```\nsrc/theseus/app.py:5\n```")
    indexed = indexed_only("src/theseus/app.py", "src/theseus/ui.py")
    rendered = render_markdown(text, indexed)
    refs = source_refs(rendered)
    assert [r["href"] for r in refs] == ["/source?path=src%2Ftheseus%2Fapp.py&line=42#L42",
                                         "/source?path=src%2Ftheseus%2Fui.py&line=7&end=9#L7"]
    assert all(r["target"] == "_blank" and r["rel"] == "noopener" for r in refs)
    assert ">src/theseus/app.py:42</a>" in rendered and "><code>src/theseus/ui.py:7-9</code></a>" in rendered
    assert "not other/file.py:3" in Page(rendered).text
    assert indexed.calls == [["src/theseus/app.py", "src/theseus/ui.py", "other/file.py"]]  # one lookup


def test_without_an_index_or_a_match_nothing_is_linked_or_looked_up():
    text = "src/theseus/app.py:42 and plain words"
    assert source_refs(render_markdown(text)) == []
    indexed = indexed_only()
    assert source_refs(render_markdown("no references here", indexed)) == [] and indexed.calls == []
    assert render_markdown(text, indexed) == render_markdown(text)


def test_references_are_looked_up_once_and_bounded():
    text = " ".join(f"f{i}.py:1" for i in range(500))
    indexed = indexed_only(*[f"f{i}.py" for i in range(500)])
    rendered = render_markdown(text, indexed)
    assert len(indexed.calls) == 1 and len(indexed.calls[0]) == markup.REF_LIMIT
    assert len(source_refs(rendered)) == markup.REF_LIMIT


def test_a_forged_placeholder_stays_text():
    rendered = render_markdown("srcref0123456789abcdefn0e and a.py:1", indexed_only("a.py"))
    assert "srcref0123456789abcdefn0e" in Page(rendered).text and len(source_refs(rendered)) == 1
