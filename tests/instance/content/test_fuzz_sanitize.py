"""Property-based fuzzing of the HTML sanitiser, `instance.content.sanitize.clean_html` (nh3).

Requirement (security issue): remote HTML is hostile input. Sanitising it must never fail,
whatever the string (a post whose content cannot be sanitised would break its inbox job),
and what comes out must be safe to put in our pages:

- no `<script`, `<iframe` or `<style` anywhere, in any case (text never holds a raw `<`:
  the serialiser escapes it, so one would be markup);
- no event handler (`on...=`) and no `style=` inside any tag;
- only the allowed tags, each with only its allowed attributes and classes (plus `lang`
  and `title`, which nh3 keeps on every tag unless told otherwise: plain text);
- no attribute a browser reads as a URL except `href`, and no `href` whose scheme, as a
  browser sees it (entities decoded, the whitespace and control characters a URL parser
  skips dropped), is `javascript:`, `vbscript:`, `data:` or anything outside the allowed
  schemes. The words themselves may appear as text ("javascript: the language") or in a
  `title`, which is harmless, so the check is on URLs and markup, not on the whole string.

Sanitising is not exactly idempotent, and cannot be, because of how HTML is parsed:

- removing a disallowed element can leave a nesting the HTML parser never builds:
  `<a><object><a>x` gives `<a><a>x</a></a>` (the parser kept the inner `a` inside
  `object`, a scoping element), and parsing that again splits it into `<a></a><a>x</a>`;
  the same happens to `p`, `li` and headings around `object`, `button`, `marquee`...;
- the parser drops one newline right after a `<pre>` start tag and the serialiser does not
  put one back (the WHATWG serialisation algorithm does not either), so each pass eats one
  leading newline of a `<pre>` block (which the browser would not have shown anyway);
- html5ever discards one U+FEFF (BOM) at the very start of its input (`discard_bom`, as
  the HTML decoding rules say), so an output that starts with one (`<iframe>\ufeff` gives
  `\ufeff`) loses it on the next pass; it is a zero-width no-break space.

What holds, and is asserted instead: sanitising the output again keeps it safe and keeps
its text (only tags move); and the second pass is a fixed point: from there on sanitising
changes nothing at all, except that it may still eat one leading BOM and one leading
newline of each `pre` per pass (see `test_why_idempotency_is_weakened`).

Inputs: any text (lone surrogates included: `json.loads` makes them from `"\\ud800"`, so
remote content can hold them), and tag soup built from the markup an attacker reaches for
(script/style/iframe/svg/math/template/noscript/textarea, comments, CDATA, entities,
obfuscated `javascript:` URLs, event handlers, misnested tags).

CI runs a fixed, small set of examples: `derandomize=True`, no example database, no
deadline. To fuzz longer locally set `FUZZ_EXAMPLES` (examples per test), e.g.
`FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -p no:cacheprovider <this file>`. It is not
called DREAMLOOM_FUZZ_EXAMPLES because tests/conftest.py deletes every DREAMLOOM_* variable
at import. Everything runs in-process.
"""

from __future__ import annotations

import itertools
import os
import re
from html.parser import HTMLParser

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from instance.content.sanitize import ATTRIBUTES, CLASSES, TAGS, URL_SCHEMES, clean_html


def fuzz(ci_examples: int) -> settings:
    """Bounded and reproducible in CI; `FUZZ_EXAMPLES` overrides the count locally."""
    return settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", ci_examples)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --------------------------------------------------------------------------- inputs

SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
TAG_NAMES = [
    *sorted(TAGS),
    "script", "style", "iframe", "img", "svg", "math", "template", "noscript", "textarea",
    "title", "xmp", "plaintext", "listing", "noembed", "noframes", "object", "embed", "form",
    "input", "button", "select", "option", "table", "td", "base", "meta", "link", "frame",
    "frameset", "body", "html", "head", "foreignObject", "annotation-xml", "mglyph", "video",
    "SCRIPT", "ScRiPt", "a\x00", "scr\x00ipt", "p/", "",
]  # fmt: skip
ATTRIBUTE_NAMES = [
    "href", "rel", "class", "start", "reversed", "value", "style", "onclick", "onerror",
    "ONLOAD", "onmouseover", "src", "srcdoc", "xlink:href", "formaction", "action", "data",
    "id", "name", "target", "dir", "lang", "title", "/onclick", "on", "o\x00nclick", "",
]  # fmt: skip
URL_VALUES = [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:x",
    "java\nscript:x", "\x01javascript:x", "&#106;avascript:x", "&#x6A;avascript:x",
    "javascript&colon;x", "jav&#x09;ascript:x", "vbscript:x", "data:text/html,<script>x",
    "https://a.example/", "http://a.example/?q=javascript:x", "//a.example/", "/relative",
    "#frag", "mailto:a@a.example", "gemini://x", "https://a.example/\"onclick=\"x", "\x00",
]  # fmt: skip
CLASS_VALUES = ["mention", "hashtag u-url", "invisible", "h-card evil", "quote-inline", "x"]
TEXT_BITS = [
    "text", " ", "\n", "\n\n", "\t", "\x00", "\r", "&", "&amp;", "&lt;script&gt;", "&#0;",
    "&#x3c;", "&nbsp;", "<", ">", "</", "<!--", "-->", "--!>", "<![CDATA[", "]]>", "<?x?>",
    "<!DOCTYPE html>", '"', "'", "=", "/", "\u202e", "\ufeff", "javascript:", "onclick=",
    "style=", "\u2028",
]  # fmt: skip
quote = st.sampled_from(['"', "'", ""])
# Surrogates go to `test_clean_html_never_raises` only; the other properties get any other
# character.
characters = st.characters(exclude_categories=["Cs"])


@st.composite
def attributes(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(ATTRIBUTE_NAMES))
    value = draw(st.one_of(
        st.sampled_from(URL_VALUES), st.sampled_from(CLASS_VALUES),
        st.text(characters, max_size=10), st.integers(-5, 100).map(str),
    ))  # fmt: skip
    if draw(st.integers(0, 5)) == 0:
        return name
    q = draw(quote)
    return f"{name}={q}{value}{q}"


@st.composite
def tags(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(TAG_NAMES))
    kind = draw(st.sampled_from(["open", "open", "close", "selfclose"]))
    if kind == "close":
        return f"</{name}>"
    attrs = "".join(draw(st.sampled_from([" ", "  ", "\t", "\n", "/"])) + draw(attributes())
                    for _ in range(draw(st.integers(0, 3))))  # fmt: skip
    return f"<{name}{attrs}{'/' if kind == 'selfclose' else ''}>"


tag_soup = st.lists(
    st.one_of(tags(), st.sampled_from(TEXT_BITS), st.text(characters, max_size=6)),
    max_size=25,
).map("".join)
any_text = st.text(st.one_of(st.characters(), st.sampled_from(SURROGATES)), max_size=200)


# --------------------------------------------------------------------------- checks


class Markup(HTMLParser):
    """The start tags of sanitised output, with their (entity-decoded) attributes, and the
    token stream used to compare two outputs."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.starts: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.tokens: list[tuple[str, object]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, attrs))
        self.tokens.append(("start", (tag, tuple(attrs))))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.tokens.append(("end", tag))

    def handle_data(self, data: str) -> None:
        if self.tokens and self.tokens[-1][0] == "data":
            data = str(self.tokens.pop()[1]) + data
        self.tokens.append(("data", data))

    def handle_comment(self, data: str) -> None:
        self.tokens.append(("comment", data))

    def handle_decl(self, decl: str) -> None:
        self.tokens.append(("decl", decl))

    def handle_pi(self, data: str) -> None:
        self.tokens.append(("pi", data))

    def unknown_decl(self, data: str) -> None:
        self.tokens.append(("decl", data))


# The markup of one tag: a name, then anything up to `>` outside of quoted values (the
# serialiser always quotes values with `"`, and escapes a `"` inside one as `&quot;`).
TAG = re.compile(r'<[^>"]*(?:"[^"]*"[^>"]*)*>')
QUOTED = re.compile(r'"[^"]*"')
SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
URL_IGNORED = re.compile(r"[\x00-\x20\x7f]")  # what a browser strips or skips in a URL
# Attributes a browser reads as a URL (only `href` is allowed, the others must be gone).
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster",
                  "background", "cite", "srcdoc"}  # fmt: skip
# nh3 keeps ammonia's generic attributes on every allowed tag unless told otherwise: plain
# text, harmless (a tooltip, a language tag).
GENERIC_ATTRIBUTES = {"lang", "title"}


def browser_scheme(value: str) -> str | None:
    """The scheme a browser would see in an attribute value (already entity-decoded)."""
    match = SCHEME.match(URL_IGNORED.sub("", value))
    return match.group(1).lower() if match else None


def check_safe(out: str) -> None:
    lowered = out.lower()
    for needle in ("<script", "<iframe", "<style"):
        assert needle not in lowered, needle
    for tag in TAG.findall(out):
        bare = QUOTED.sub('""', tag).lower()  # the tag without its attribute values
        assert not re.search(r"[\s/\"]on\w*\s*=", bare), tag
        assert not re.search(r"[\s/\"]style\s*=", bare), tag
    for name, attrs in Markup(out).starts:
        assert name in TAGS, name
        allowed = ATTRIBUTES.get(name, set()) | GENERIC_ATTRIBUTES
        allowed |= {"class"} if name in CLASSES else set()
        for attribute, value in attrs:
            assert attribute in allowed, (name, attribute)
            assert not attribute.startswith("on") and attribute != "style"
            text = value or ""  # HTMLParser has decoded the entities
            if attribute in URL_ATTRIBUTES:
                scheme = browser_scheme(text)
                assert scheme not in ("javascript", "vbscript", "data"), (name, value)
                assert scheme is None or scheme in URL_SCHEMES, (name, value)
            if attribute == "class":
                assert set(text.split()) <= CLASSES[name], (name, value)


def pre_normalised(tokens: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """Tokens with the leading newlines of every `pre` block dropped."""
    out: list[tuple[str, object]] = []
    for token in tokens:
        if token[0] == "data" and out and out[-1] == ("start", ("pre", ())):
            token = ("data", str(token[1]).lstrip("\n"))
            if not token[1]:
                continue
        out.append(token)
    return out


def normalised(out: str) -> list[tuple[str, object]]:
    """The tokens of `out` without its leading BOMs and the leading newlines of its `pre`s."""
    return pre_normalised(Markup(out.lstrip("\ufeff")).tokens)


def text_of(tokens: list[tuple[str, object]]) -> str:
    return "".join(str(value) for kind, value in tokens if kind == "data")


def starts_pre_with_newline(tokens: list[tuple[str, object]]) -> bool:
    return any(
        first == ("start", ("pre", ())) and second[0] == "data" and str(second[1])[:1] == "\n"
        for first, second in itertools.pairwise(tokens)
    )


# --------------------------------------------------------------------------- properties


@fuzz(600)
@given(st.one_of(any_text, tag_soup))
@example(None)
@example("")
@example("\ud800")
@example("<p>\udfff</p>")
def test_clean_html_never_raises(text: str | None) -> None:
    out = clean_html(text)
    assert isinstance(out, str)


@fuzz(700)
@given(st.one_of(tag_soup, st.text(characters, max_size=100)))
@example('<a href="jav&#x09;ascript:alert(1)" onclick=x style="x">y</a>')
@example("<svg><style><img src=x onerror=alert(1)></style></svg>")
@example("<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>")
@example('<noscript><p title="</noscript><img src=x onerror=alert(1)>">')
@example('<a href=" &#14;  javascript:alert(1)">x</a><a href="data:text/html,x">y</a>')
@example('<a class="mention evil" href="https://a.example/" rel="me nofollow">@a</a>')
def test_output_is_safe(text: str) -> None:
    check_safe(clean_html(text))


@fuzz(700)
@given(st.one_of(tag_soup, st.text(characters, max_size=100)))
@example("<pre>\n\n\nx</pre>")
@example("<p><pre>\n<b>x</b></pre></p><pre>\n</pre>")
@example("<a href=x><a href=y>z</a></a><p><p>")
@example("<iframe>\ufeff")
@example("\ufeff\ufeff<pre>\n\n</pre>")
@example("<a><object><a>x<p><button><p>y<li><marquee><li>z")
def test_sanitising_again_keeps_the_text_and_reaches_a_fixed_point(text: str) -> None:
    out = clean_html(text)
    again = clean_html(out)
    third = clean_html(again)
    check_safe(again)
    assert text_of(normalised(again)) == text_of(normalised(out))
    assert normalised(third) == normalised(again)
    if not again.startswith("\ufeff") and not starts_pre_with_newline(Markup(again).tokens):
        assert third == again


def test_why_idempotency_is_weakened() -> None:
    """The three ways a second pass differs: misnesting left by a removed element is split,
    a newline right after `<pre>` and a BOM at the very start of the input are dropped."""
    assert clean_html("<a><object><a>x") == "<a><a>x</a></a>"
    assert clean_html("<a><a>x</a></a>") == "<a></a><a>x</a>"
    assert clean_html("<pre>\n\nx</pre>") == "<pre>\nx</pre>"
    assert clean_html("<pre>\nx</pre>") == "<pre>x</pre>"
    assert clean_html("<pre>x</pre>") == "<pre>x</pre>"
    assert clean_html("<iframe>\ufeff") == "\ufeff"
    assert clean_html("\ufeff") == ""
    assert clean_html("a\ufeff") == "a\ufeff"
