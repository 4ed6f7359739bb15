"""Hostile HTML made safe to relay: an email allow-list enforced by nh3 (Ammonia). Pure.

Three passes, so that no hand-written parser ever has the last word:

1. nh3 with the allow-list below; `_AttributePolicy` checks every URL and inline style.
2. `_ImagePass` reads nh3's well-formed output with html.parser and rewrites whole
   `<img>` elements: remote images become their alt text, tracking pixels disappear.
3. nh3 again with the same allow-list. When images are blocked this pass drops every
   remote image URL it still sees, so a difference between html.parser and html5ever
   can never let one through.

`rewrite_attribute`, when given, sees every attribute value the last pass keeps (decoded,
as a client reads it) and may change or drop it: the relay rewrites `cid:` references and
hides addresses in links and titles there.

A separate permissive nh3 pass over the input (`_inventory`) only describes what was
taken out, for the report; it decides nothing. Before any of it, `nesting_work` bounds
html5ever's cost on deeply nested tags, which grows with depth squared: past the bound the
part is relayed as escaped text.

Decisions:
- Inline `style` is kept: Outlook and Gmail lay mail out with it. Only properties in
  `STYLE_PROPERTIES` survive, values with CSS escapes, comments, `expression` or any
  function other than colours, `calc` and gradients are dropped, and `url()` keeps
  `cid:` and `data:image/...` always, http(s) only when remote images are allowed.
  `position` and `z-index` are not allowed, so a mail cannot lay itself over the
  reader's webmail.
- `class` and `id` are dropped: with no `<style>` element left they style nothing, but
  they could match the webmail's own CSS.
- Relative URLs are dropped: a relayed mail has no base to resolve them against.
- An `<img>` without a usable source (remote while blocked, unsafe, or none) stays as
  `<img alt="...">` with its alt text or `[image blocked]`, and counts as blocked.
  A remote image of at most 1x1 pixels (or hidden) is removed outright and counts too,
  even when remote images are allowed.
"""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Callable

import nh3

from gateway.mail.css import (
    CSS_FORBIDDEN,
    CSS_FUNCTION,
    CSS_FUNCTIONS,
    CSS_URL,
    HOSTILE_PROPERTIES,
    MAX_STYLE_CHARS,
    STYLE_PROPERTIES,
    declarations,
)

BLOCKED_IMAGE_TEXT = "[image blocked]"
LINK_REL = "noopener noreferrer nofollow"

# What `SanitizedHtml.removed` may say, in the order things are found.
SCRIPT = "script"
STYLE_ELEMENT = "style element"
STYLESHEET = "external stylesheet"
META_REFRESH = "meta refresh"
FRAME = "iframe"
EMBEDDED = "embedded object"
FORM = "form"
SVG = "svg"
MATH = "math"
BASE = "base"
EVENT_HANDLER = "event handler"
SCRIPT_LINK = "script link"
DATA_LINK = "data link"
UNSAFE_STYLE = "unsafe style"
CONDITIONAL_COMMENT = "conditional comment"
UNPARSEABLE = "unparseable html"
TOO_DEEP = "deeply nested html"
NOT_ITEMISED = "large html: what was removed is not itemised"

INVENTORY_CHARS = 512 * 1024  # longer HTML is sanitised the same, without itemising what was removed
MAX_CSS_URLS = 10  # url() values in one declaration; real mail has one or two
MAX_NESTING_WORK = 20_000_000  # about 0.1 s of html5ever per pass; a long newsletter is near 10**5

TAGS = frozenset({
    "p", "div", "span", "br", "b", "i", "u", "s", "strike", "strong", "em", "a", "ul", "ol", "li",
    "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "colgroup",
    "col", "blockquote", "pre", "code", "tt", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "img",
    "font", "center", "small", "big", "sub", "sup", "cite", "q", "abbr", "mark", "del", "ins",
})
# Dropped together with their content (text inside a <script> or <title> is not mail text).
CLEAN_CONTENT_TAGS = frozenset({
    "script", "style", "title", "iframe", "frame", "frameset", "noframes", "object", "embed",
    "applet", "noembed", "svg", "math", "select", "textarea", "template", "xmp",
})
_CELL = {"width", "height", "align", "valign", "bgcolor", "background", "colspan", "rowspan", "nowrap"}
ATTRIBUTES: dict[str, set[str]] = {
    "*": {"style", "align", "dir", "lang", "title"},
    "a": {"href"},
    "img": {"src", "srcset", "alt", "width", "height", "border", "hspace", "vspace"},
    "table": {"width", "height", "border", "cellpadding", "cellspacing", "bgcolor", "background"},
    "tr": {"valign", "bgcolor", "height", "background"},
    "td": _CELL,
    "th": _CELL | {"scope"},
    "col": {"span", "width", "valign"},
    "colgroup": {"span", "width", "valign"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type"},
    "ul": {"type"},
    "li": {"value", "type"},
    "hr": {"size", "width", "noshade", "color"},
    "blockquote": {"type"},  # Thunderbird quotes with <blockquote type="cite">
}
_LINK_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
_REMOTE_SCHEMES = frozenset({"http", "https"})
_SCRIPT_SCHEMES = frozenset({"javascript", "vbscript", "livescript"})
_DATA_IMAGE = re.compile(r"data:image/(png|gif|jpe?g|webp|bmp)[;,]", re.IGNORECASE)
_C0_AND_SPACE = "".join(map(chr, range(0x21)))
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "data", "background", "poster", "xlink:href"})
_MARK = "data-gateway-watched"
_CONDITIONAL_COMMENT = re.compile(r"<!--\s*\[if", re.IGNORECASE)
_DOCUMENT_HANDLER = re.compile(r"<(?:body|html)\b[^<>]{0,2000}?[\s/\"']on[a-z]+\s*=", re.IGNORECASE)
_TAG_TOKEN = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)")
_ANY_TAG = re.compile(r"<[^<>]*>")
_VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta",
                        "param", "source", "track", "wbr"})
# html5ever closes an open <p>, <li>, <td>... when the next one starts, so leaving them
# unclosed (as old HTML generators do) does not nest them.
_SIBLING_CLOSED_TAGS = frozenset({"p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead",
                                  "tbody", "tfoot", "rb", "rt", "rp"})
_TAG_DESCRIPTIONS = {
    "script": SCRIPT, "style": STYLE_ELEMENT, "iframe": FRAME, "frame": FRAME, "frameset": FRAME,
    "object": EMBEDDED, "embed": EMBEDDED, "applet": EMBEDDED, "form": FORM, "input": FORM,
    "button": FORM, "select": FORM, "textarea": FORM, "svg": SVG, "math": MATH, "base": BASE,
}


@dataclass(frozen=True)
class SanitizedHtml:
    """Safe HTML, how many images were blocked, and short notes of what was removed."""

    html: str
    blocked_images: int
    removed: tuple[str, ...]


AttributeRewrite = Callable[[str, str, str], "str | None"]


def sanitize_html(html: str, *, block_remote_images: bool = True,
                  rewrite_attribute: AttributeRewrite | None = None) -> SanitizedHtml:
    """Sanitise one HTML body for relaying. Never raises: input nothing can parse
    comes back as escaped text."""
    try:
        html = valid_text(html)
        if nesting_work(html) > MAX_NESTING_WORK:
            return SanitizedHtml(text_only(html), 0, (TOO_DEEP,))
        return _sanitize(html, block_remote_images, rewrite_attribute)
    except Exception:  # a parser meeting something new must not stop the relay
        return SanitizedHtml(text_only(html), 0, (UNPARSEABLE,))


def _sanitize(html: str, block: bool, rewrite: AttributeRewrite | None) -> SanitizedHtml:
    # The inventory only describes what is removed; past INVENTORY_CHARS it is skipped to
    # bound the work (three passes instead of four), and the report says so.
    notes = _inventory(html) if len(html) <= INVENTORY_CHARS else [NOT_ITEMISED]
    first = _AttributePolicy(block, final=False)
    cleaned = _clean(html, first)
    images = _ImagePass(block)
    images.feed(cleaned)
    images.close()
    final = _clean("".join(images.out), _AttributePolicy(block, final=True, rewrite=rewrite))
    removed = tuple(dict.fromkeys(notes + first.notes))
    return SanitizedHtml(final.strip(), images.blocked + first.style_images, removed)


def _clean(html: str, policy: _AttributePolicy) -> str:
    return nh3.clean(
        html,
        tags=set(TAGS),
        clean_content_tags=set(CLEAN_CONTENT_TAGS),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        attribute_filter=policy,
        strip_comments=True,
        link_rel=LINK_REL,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes={"http", "https", "mailto", "tel", "cid", "data"},  # narrowed per attribute below
        url_relative="deny",
        filter_style_properties=set(STYLE_PROPERTIES),
    )


def valid_text(html: str) -> str:
    """Lone surrogates (from a broken charset decode) cannot cross into Rust."""
    return html.encode("utf-8", "replace").decode("utf-8")


def stripped_text(html: str) -> str:
    """The text of HTML with its tags stripped by a linear regex, entities decoded and
    white space folded: the fallback when no parser may read it."""
    try:
        return " ".join(htmllib.unescape(_ANY_TAG.sub(" ", valid_text(str(html)))).split())
    except Exception:
        return ""


def text_only(html: str) -> str:
    """The fallback for relaying: `stripped_text`, escaped as HTML text."""
    return "<div>" + htmllib.escape(stripped_text(html)) + "</div>"


def _url(value: str) -> tuple[str, str]:
    """(scheme, url) read the way a browser does: tabs and newlines anywhere and
    leading or trailing controls and spaces do not count ("jav&#x09;ascript:")."""
    url = re.sub(r"[\t\n\r]", "", value).strip(_C0_AND_SPACE)
    match = _SCHEME.match(url)
    return (match.group(1).lower() if match else ""), url


def _image_source(value: str) -> str | None:
    """'remote', 'local' (cid: or an inline raster data: image) or None (not an image URL)."""
    scheme, url = _url(value)
    if scheme in _REMOTE_SCHEMES:
        return "remote"
    if scheme == "cid" or (scheme == "data" and _DATA_IMAGE.match(url)):
        return "local"
    return None


def _srcset_source(value: str) -> str | None:
    """The worst source in a srcset: data: candidates are refused (their commas are ambiguous)."""
    kinds = set()
    for candidate in value.split(","):
        words = candidate.split()
        if not words:
            continue
        scheme, _ = _url(words[0])
        if scheme not in _REMOTE_SCHEMES and scheme != "cid":
            return None
        kinds.add("remote" if scheme in _REMOTE_SCHEMES else "local")
    return "remote" if "remote" in kinds else ("local" if kinds else None)


class _AttributePolicy:
    """nh3's attribute_filter: narrows URLs per attribute and filters inline CSS.

    With `final`, remote image URLs are dropped outright when images are blocked."""

    def __init__(self, block: bool, *, final: bool, rewrite: AttributeRewrite | None = None) -> None:
        self.block, self.final, self.rewrite = block, final, rewrite
        self.notes: list[str] = []
        self.style_images = 0

    def __call__(self, element: str, attribute: str, value: str) -> str | None:
        try:
            kept = self._check(attribute, value)
            if kept is not None and self.rewrite is not None:
                kept = self.rewrite(element, attribute, kept)
            return kept
        except Exception:  # drop what we could not judge
            return None

    def _check(self, attribute: str, value: str) -> str | None:
        if attribute == "href":
            scheme, _ = _url(value)
            if scheme == "data":
                self.notes.append(DATA_LINK)
            return value if scheme in _LINK_SCHEMES else None
        if attribute in ("src", "background", "srcset"):
            source = (_srcset_source if attribute == "srcset" else _image_source)(value)
            if source is None:
                if _url(value)[0] in _SCRIPT_SCHEMES:
                    self.notes.append(SCRIPT_LINK)
                return None
            if source == "remote" and self.block and self.final:
                return None
            return value
        if attribute == "style":
            return self._style(value) or None
        return value

    def _style(self, style: str) -> str:
        if len(style) > MAX_STYLE_CHARS:  # bounded work: nothing real is that long
            self.notes.append(UNSAFE_STYLE)
            return ""
        kept = []
        for declaration in declarations(style):
            name, colon, value = declaration.partition(":")
            name, value = name.strip().lower(), value.strip()
            if not colon or not value:
                continue
            if name not in STYLE_PROPERTIES:
                if name in HOSTILE_PROPERTIES:
                    self.notes.append(UNSAFE_STYLE)
                continue
            if self._css_value_ok(value):
                kept.append(f"{name}:{value}")
        return ";".join(kept)

    def _css_value_ok(self, value: str) -> bool:
        lowered = value.lower()
        functions = CSS_FUNCTION.findall(lowered)
        if any(bad in lowered for bad in CSS_FORBIDDEN) or any(f not in CSS_FUNCTIONS for f in functions):
            self.notes.append(UNSAFE_STYLE)
            return False
        if functions.count("url") > MAX_CSS_URLS:  # bounded work: the url() pattern rescans to the end
            self.notes.append(UNSAFE_STYLE)
            return False
        urls = CSS_URL.findall(value)
        if len(urls) != functions.count("url"):
            self.notes.append(UNSAFE_STYLE)
            return False
        sources = [_image_source(url) for _, url in urls]
        if None in sources:
            self.notes.append(UNSAFE_STYLE)
            return False
        if "remote" in sources and self.block:
            if not self.final:
                self.style_images += 1
            return False
        return True


def _inventory(html: str) -> list[str]:
    """What the input holds that the allow-list will remove, for the report only.

    A permissive nh3 pass with the watched tags marked by an attribute, so the attribute
    filter sees each of them and every on* handler; html5ever does the parsing."""
    notes: list[str] = []

    def watch(element: str, attribute: str, value: str) -> str:
        if attribute == _MARK:
            notes.append(_TAG_DESCRIPTIONS[element])
        elif attribute.startswith("on"):
            notes.append(EVENT_HANDLER)
        elif attribute == "rel" and "stylesheet" in value.lower():
            notes.append(STYLESHEET)
        elif attribute == "http-equiv" and value.strip().lower() == "refresh":
            notes.append(META_REFRESH)
        elif _url(value)[0] in _SCRIPT_SCHEMES:
            notes.append(SCRIPT_LINK)
        return value

    kept = nh3.clean(
        html,
        tags=set(TAGS | _TAG_DESCRIPTIONS.keys() | {"link", "meta"}),
        clean_content_tags=set(),
        attributes={"*": set(_URL_ATTRIBUTES), "link": {"rel"}, "meta": {"http-equiv"}},
        generic_attribute_prefixes={"on"},
        set_tag_attribute_values={tag: {_MARK: "1"} for tag in _TAG_DESCRIPTIONS},
        attribute_filter=watch,
        strip_comments=False,
        link_rel=None,
        url_schemes=set(_SCRIPT_SCHEMES),
    )
    if _CONDITIONAL_COMMENT.search(kept):
        notes.append(CONDITIONAL_COMMENT)
    if _DOCUMENT_HANDLER.search(html):  # fragment parsing drops <body>, and its onload with it
        notes.append(EVENT_HANDLER)
    return notes


def nesting_work(html: str) -> int:
    """An upper estimate of html5ever's work on nesting: the sum, over start tags, of the
    elements still open. html5ever scans its stack of open elements for many start tags,
    so 100,000 nested <div>s take it minutes; stops counting past the limit."""
    open_by_name: dict[str, int] = {}
    depth = work = 0
    for match in _TAG_TOKEN.finditer(html):
        name = match.group(2).lower()
        if name in _VOID_TAGS or name in _SIBLING_CLOSED_TAGS:
            continue
        if not match.group(1):
            work += depth
            depth += 1
            open_by_name[name] = open_by_name.get(name, 0) + 1
            if work > MAX_NESTING_WORK:
                break
        elif open_by_name.get(name):
            open_by_name[name] -= 1
            depth -= 1
    return work


class _ImagePass(HTMLParser):
    """Rewrites nh3 output element by element: blocks remote images and background
    attributes, removes tracking pixels, and re-escapes everything it writes."""

    def __init__(self, block: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.block = block
        self.out: list[str] = []
        self.blocked = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pairs = [(name, value or "") for name, value in attrs]
        if tag == "img":
            pairs = self._image(pairs)
            if pairs is None:
                return
        elif self.block and any(n == "background" and _image_source(v) == "remote" for n, v in pairs):
            pairs = [(n, v) for n, v in pairs if n != "background"]
            self.blocked += 1
        self.out.append(f"<{tag}" + "".join(f' {n}="{htmllib.escape(v)}"' for n, v in pairs) + ">")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(htmllib.escape(data, quote=False))

    def _image(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]] | None:
        values = dict(pairs)
        sources = {_image_source(values.get("src", "")), _srcset_source(values.get("srcset", ""))}
        remote = "remote" in sources
        if remote and _is_tracking_pixel(values):
            self.blocked += 1
            return None
        if (remote and self.block) or sources == {None}:
            self.blocked += 1
            alt = values.get("alt", "").strip() or BLOCKED_IMAGE_TEXT
            return [("alt", alt)] + [(n, v) for n, v in pairs if n == "title"]
        return pairs


def _is_tracking_pixel(values: dict[str, str]) -> bool:
    """At most 1x1 pixels (by attribute or inline style), zero in one dimension, or hidden."""
    style = values.get("style", "").lower().replace(" ", "")
    if "display:none" in style:
        return True
    known = []
    for name in ("width", "height"):
        size = _pixels(values.get(name))
        size = _style_pixels(style, name) if size is None else size
        if size is not None:
            known.append(size)
    return bool(known) and all(size <= 1 for size in known) and (len(known) == 2 or 0 in known)


def _pixels(value: str | None) -> float | None:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:px)?\s*", value or "")
    return float(match.group(1)) if match else None


def _style_pixels(style: str, name: str) -> float | None:
    match = re.search(rf"(?:^|;){name}:(\d+(?:\.\d+)?)(?:px)?(?:;|!|$)", style)
    return float(match.group(1)) if match else None
