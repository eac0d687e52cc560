"""Tests for theseus.markup: hostile text must never become live HTML, and markdown still renders."""

import sys
from html.parser import HTMLParser

import pytest

from theseus import markup
from theseus.markup import render_markdown, render_plain

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a", "hr", "div",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
}
FORBIDDEN_TAGS = {
    "script", "iframe", "svg", "img", "style", "object", "embed", "form", "math", "button", "base", "meta",
}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "xlink:href", "srcdoc"}
SAFE_SCHEMES = {"http", "https", "mailto"}
C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
VOID_TAGS = {"br", "hr", "img", "embed", "meta", "base"}


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
                allowed = value == "code-block" if element.tag == "div" else value.startswith("language-")
                assert allowed and element.tag in {"div", "pre", "code"}, html_out
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
    page = assert_safe(render_markdown(f"```{info}\nprint(1 < 2)\n```"))
    (code,) = page.find("code")
    assert code.ancestors[-2:] == ("div", "pre")
    assert page.find("div")[0].attrs == {"class": "code-block"}
    assert code.attrs.get("class") == (f"language-{language}" if language else None)
    assert page.find("pre")[0].attrs == {}
    assert page.text.strip() == "print(1 < 2)"


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
