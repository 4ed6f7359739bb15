"""What each MIME part of a relayed message is, decided by content as well as by label. Pure.

A mail client and the gateway must read a part the same way, or a label can hide what the
part is ("text/html (comment)", a quoted type, two Content-Type headers, a Content-Type
the email package does not understand). `normalise` therefore rewrites every part so that
it can only be read one way, before anything looks at it:

- one Content-Type, Content-Transfer-Encoding and Content-Disposition each (the first; the
  others are deleted), written canonically: comments and quotes removed, lower case;
  an unreadable type becomes text/plain (application/octet-stream for a named file), as
  RFC 2045 section 5.2 says;
- a part inside the body keeps only its content headers: X-*, Content-Location,
  Content-Base and the like go (they can carry anything, addresses included);
- every Content-ID is replaced by a neutral one derived from it (`neutral_content_id`),
  and `cid:` references are rewritten the same way, so an ID naming the sender's host
  or address never crosses;
- multipart preambles and epilogues, which some clients show, are dropped;
- an attached `.eml` file sent as a plain file is read as the message/rfc822 part it is.

`kind_of` then says what a part is for the relay: HTML however labelled (text/html,
application/xhtml+xml, text/watch-html, HTML files, and generic types whose first bytes
are HTML), SVG, AMP, calendar, vCard, TNEF, a forwarded message, text or binary.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import weakref
from email.header import decode_header
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Iterator
from urllib.parse import unquote

from gateway.mail.headers import decode
from gateway.mail.limits import Limits, bound
from gateway.mail.wire import from_bytes

# What `kind_of` may answer.
CONTAINER = "container"
HTML = "html"
SVG = "svg"
AMP = "amp"
CALENDAR = "calendar"
VCARD = "vcard"
TNEF = "tnef"
MESSAGE = "message"  # an attached message the email package parsed (its headers are a message's)
STATUS = "status"  # header blocks of message/delivery-status and the like
WEB_ARCHIVE = "web archive"
OUTLOOK_ITEM = "outlook item"
UNCHECKABLE = "uncheckable message"
TEXT = "text"
BINARY = "binary"

CONTENT_HEADERS = frozenset({"content-type", "content-transfer-encoding", "content-disposition", "content-id",
                             "content-description", "content-language"})
# Headers kept on an attached message: what a reader needs to recognise it.
MESSAGE_HEADERS = frozenset({"from", "to", "cc", "date", "subject"}) | CONTENT_HEADERS | {"mime-version"}
NEUTRAL_CID_DOMAIN = "relay.invalid"
ENCODINGS = frozenset({"7bit", "8bit", "binary", "quoted-printable", "base64", "x-uuencode", "uuencode", "x-uue"})
SNIFF_BYTES = 1024

HTML_EXTENSIONS = frozenset({"html", "htm", "xhtml", "xht", "xhtm", "shtml", "shtm", "dhtml", "phtml"})
SVG_EXTENSIONS = frozenset({"svg", "svgz"})
WEB_ARCHIVE_EXTENSIONS = frozenset({"mht", "mhtml", "webarchive"})
CALENDAR_TYPES = frozenset({"text/calendar", "application/ics", "text/x-vcalendar", "application/calendar"})
CALENDAR_EXTENSIONS = frozenset({"ics", "ifb", "vcs", "ical", "icalendar"})
VCARD_TYPES = frozenset({"text/vcard", "text/x-vcard", "text/directory", "application/vcard", "text/x-vcard-21"})
VCARD_EXTENSIONS = frozenset({"vcf", "vcard"})
TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef", "application/x-tnef"})
TNEF_NAMES = frozenset({"winmail.dat", "win.dat"})
TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"
OUTLOOK_TYPES = frozenset({"application/vnd.ms-outlook", "application/x-msg", "application/x-outlook-msg"})
UNCHECKABLE_TYPES = frozenset({"message/partial", "message/external-body"})
# Types that say nothing about the content: what a client does with them depends on the bytes.
GENERIC_TYPES = frozenset({
    "application/octet-stream", "application/unknown", "application/x-unknown", "unknown/unknown",
    "application/binary", "binary/octet-stream", "application/force-download", "application/x-download",
    "application/download", "application/x-msdownload-unknown", "*/*", "application/*",
})
TEXT_APPLICATION_TYPES = frozenset({"application/json", "application/xml", "application/csv", "application/x-csv",
                                    "application/yaml", "application/x-yaml", "application/ld+json",
                                    "application/x-www-form-urlencoded", "application/rtf"})
TEXT_EXTENSIONS = frozenset({"txt", "text", "csv", "tsv", "log", "md", "json", "xml", "yaml", "yml", "ini", "rtf"})
_XHTML_NAMESPACE = b"http://www.w3.org/1999/xhtml"
_SVG_NAMESPACE = b"http://www.w3.org/2000/svg"
# WHATWG MIME sniffing, "rules for identifying an unknown MIME type": the tags that make a
# browser render bytes as HTML, after leading white space, followed by a space or '>'.
_HTML_SIGNATURE = re.compile(
    rb"[\t\n\x0c\r ]*(?:\xef\xbb\xbf)?[\t\n\x0c\r ]*<(?:!doctype html|html|head|script|iframe|h1|div|font|table|a|style|"
    rb"title|b|body|br|p|!--|meta|img|form|svg|object|embed|frameset)[\t\n\x0c\r >/]", re.IGNORECASE)
_SVG_SIGNATURE = re.compile(rb"<svg[\s>/]", re.IGNORECASE)
_TYPE = re.compile(r"[a-z0-9!#$&^_.+*-]+/[a-z0-9!#$&^_.+*-]+")
_CID_URL = re.compile(r"cid:([^\s\"'<>()\\,]+)", re.IGNORECASE)
LOOP_HEADER = "X-Dispute-Gateway-Loop"  # kept on attached messages until replace_body has seen it
_MALFORMED: weakref.WeakSet = weakref.WeakSet()  # parts whose Content-Type could not be read


def walk(message: Message) -> Iterator[tuple[Message | None, Message, str]]:
    """(parent, node, role) for every node in document order; role is 'root', 'message'
    (the top of an attached message), 'status' (a header block of a delivery report) or
    'part'. Uses a stack: hostile mail can nest deeper than Python's recursion limit."""
    stack: list[tuple[Message | None, Message, str]] = [(None, message, "root")]
    while stack:
        parent, node, role = stack.pop()
        yield parent, node, role
        payload = node.get_payload()
        if not isinstance(payload, list):
            continue
        ctype = node.get_content_type()
        if ctype.startswith("message/") and ctype not in ("message/rfc822", "message/global"):
            child_role = "status"
        elif node.get_content_maintype() == "message":
            child_role = "message"
        else:
            child_role = "part"
        stack.extend((node, child, child_role) for child in reversed(payload) if isinstance(child, Message))


def normalise(message: Message, *, limits: Limits = Limits(), attached: bool = False) -> None:
    """Rewrite every part so it can be read only one way (see the module docstring).
    `attached`: `message` is itself an attached message (it keeps a message's headers only)."""
    for _parent, node, role in list(walk(message)):
        role = "message" if attached and role == "root" else role
        if role == "status":
            continue
        _one_of_each(node)
        _canonical_type(node)
        _canonical_encoding(node)
        _canonical_disposition(node)
        if role in ("part", "message"):
            kept = CONTENT_HEADERS if role == "part" else MESSAGE_HEADERS | {LOOP_HEADER.lower()}
            for name in list(dict.fromkeys(node.keys())):
                if name.lower() not in kept:
                    del node[name]
        if node.get("Content-ID") is not None:
            node.replace_header("Content-ID", neutral_content_id(str(node.get("Content-ID"))))
        if role == "part" and _is_attached_message_file(node):
            _read_as_message(node, limits)
        elif node.is_multipart():
            node.preamble = node.epilogue = None


def neutral_content_id(value: str) -> str:
    """A Content-ID that names nothing but itself, the same for the same original ID (so
    `cid:` references still find their part)."""
    key = unquote(str(value)).strip().strip("<>").strip().lower()
    return f"<{hashlib.sha256(key.encode('utf-8', 'replace')).hexdigest()[:24]}@{NEUTRAL_CID_DOMAIN}>"


def neutral_cid_urls(text: str) -> str:
    """`cid:` URLs in HTML or CSS rewritten to the neutral IDs `normalise` gave their parts."""
    if "cid:" not in text.lower():
        return text
    return _CID_URL.sub(lambda m: "cid:" + neutral_content_id(m.group(1)).strip("<>"), text)


def strip_comments(value: str) -> str:
    """An RFC 5322 structured value without its (comments), quoted strings left alone."""
    if "(" not in value:
        return value
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
            if not depth:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            if not depth:
                out.append(char)
            continue
        if depth:
            depth += {"(": 1, ")": -1}.get(char, 0)
            continue
        if quoted:
            quoted = char != '"'
            out.append(char)
        elif char == "(":
            depth = 1
        else:
            quoted = char == '"'
            out.append(char)
    return "".join(out)


def _header_text(value) -> str:
    if isinstance(value, str) and value.isascii():
        return value
    return decode(value)


def _one_of_each(node: Message) -> None:
    for name in ("Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Content-ID",
                 "Content-Description"):
        values = node.get_all(name) or []
        if len(values) > 1:  # clients differ on which one counts: the first is the one we read
            del node[name]
            node[name] = values[0]


def _split_value(value: str) -> tuple[str, str]:
    """(token, the rest from the first ';'), comments removed."""
    value = strip_comments(_header_text(value))
    token, _, rest = value.partition(";")
    return re.sub(r'[\s"\']', "", token).lower(), rest.strip()


def content_type(node: Message) -> str:
    """The type a part has once normalised (without changing it): the first Content-Type,
    comments, quotes, case and white space removed; text/plain when there is none or it
    cannot be read (application/octet-stream for a named file)."""
    value = node.get("Content-Type")
    if value is None:
        return node.get_content_type()  # the default: text/plain, or message/rfc822 in a digest
    token, rest = _split_value(str(value) if isinstance(value, str) else _header_text(value))
    if _TYPE.fullmatch(token):
        return token
    return "application/octet-stream" if _has_name(node, rest) else "text/plain"


def _canonical_type(node: Message) -> None:
    value = node.get("Content-Type")
    if value is None:
        return
    raw = str(value) if isinstance(value, str) else _header_text(value)
    token, rest = _split_value(raw)
    if not _TYPE.fullmatch(token):
        token = "application/octet-stream" if _has_name(node, rest) else "text/plain"
        _MALFORMED.add(node)  # kind_of sniffs its content
    canonical = f"{token}; {rest}" if rest else token
    if canonical != raw.strip():
        del node["Content-Type"]
        node["Content-Type"] = canonical


def _has_name(node: Message, params: str) -> bool:
    return "name" in params.lower() or bool(node.get_param("filename", header="content-disposition"))


def _canonical_encoding(node: Message) -> None:
    value = node.get("Content-Transfer-Encoding")
    if value is None:
        return
    token, _ = _split_value(str(value))
    if token not in ENCODINGS:
        token = ("base64" if token.startswith("base64") else
                 "quoted-printable" if token.startswith("quoted") else "7bit")
    if token != str(value).strip():
        del node["Content-Transfer-Encoding"]
        node["Content-Transfer-Encoding"] = token


def _canonical_disposition(node: Message) -> None:
    value = node.get("Content-Disposition")
    if value is None:
        return
    raw = _header_text(value)
    token, rest = _split_value(raw)
    token = token if token in ("inline", "attachment") else "attachment"  # RFC 2183: unknown means attachment
    canonical = f"{token}; {rest}" if rest else token
    if canonical != raw.strip():
        del node["Content-Disposition"]
        node["Content-Disposition"] = canonical


def _is_attached_message_file(node: Message) -> bool:
    """An .eml file, or a message/rfc822 part the email package did not read as a message
    (a base64 or quoted-printable one, which RFC 2046 forbids and clients decode anyway)."""
    if node.get_content_type() in ("message/rfc822", "message/global"):
        return not node.is_multipart() or str(node.get("Content-Transfer-Encoding", "")).lower() in (
            "base64", "quoted-printable")
    return not node.is_multipart() and extension(filename(node)) == "eml"


def _encoded_payload(node: Message) -> bytes | None:
    payload = node.get_payload()
    if not isinstance(payload, list):
        data = node.get_payload(decode=True)
        return data if isinstance(data, bytes) else None
    # the email package read the encoded text as a message without headers: take it back
    text = "".join(inner.as_string() for inner in payload if isinstance(inner, Message)).strip()
    holder = Message()
    holder["Content-Transfer-Encoding"] = str(node.get("Content-Transfer-Encoding"))
    holder.set_payload(text)
    return holder.get_payload(decode=True)


def _read_as_message(node: Message, limits: Limits) -> None:
    """An .eml file attached as a plain file (or an encoded message/rfc822 part): parsed,
    so its headers and body are checked like any forwarded message."""
    data = _encoded_payload(node)
    if not isinstance(data, bytes) or not data.strip():
        return
    inner = from_bytes(bound(data, limits).raw)
    for name in ("Content-Type", "Content-Transfer-Encoding"):
        del node[name]
    node["Content-Type"] = "message/rfc822"
    node.set_payload([inner])
    normalise(inner, limits=limits, attached=True)


def filename(node: Message) -> str:
    """The file name a reader sees (filename, else name), RFC 2231 and RFC 2047 decoded."""
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        value = node.get_param(param, header=header)
        if value:
            return decode_words(collapse_rfc2231_value(value))
    return ""


def decode_words(value: str) -> str:
    """RFC 2047 encoded words in a parameter (against the RFCs, but common); never raises."""
    if "=?" not in value:
        return value
    try:
        pieces = decode_header(value)
    except Exception:
        return value
    out = []
    for data, charset in pieces:
        if isinstance(data, str):
            out.append(data)
            continue
        try:
            out.append(data.decode(charset or "ascii", errors="replace"))
        except LookupError:
            out.append(data.decode("latin-1"))
    return "".join(out)


def extension(name: str) -> str:
    """The last extension, lower case, ignoring what Windows ignores (trailing dots and
    spaces) and invisible characters."""
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf"))
    base = name.replace("\\", "/").rsplit("/", 1)[-1].rstrip(". ").lower()
    return base.rsplit(".", 1)[-1].strip() if "." in base else ""


def decoded_bytes(node: Message) -> bytes:
    data = node.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def decoded_text(node: Message) -> str | None:
    """A leaf's content as text in its declared charset (UTF-8 when unknown), or None."""
    payload = node.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    try:
        return payload.decode(node.get_content_charset() or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", errors="replace")


def kind_of(node: Message, role: str = "part") -> str:
    """What a node is for the relay (one of the constants above), by label, name and content."""
    if role == "status":
        return STATUS
    payload = node.get_payload()
    ctype = node.get_content_type()
    if isinstance(payload, list):
        if ctype.startswith("message/"):
            return UNCHECKABLE if ctype in UNCHECKABLE_TYPES else (MESSAGE if ctype in ("message/rfc822",
                                                                                         "message/global") else
                                                                  CONTAINER)
        return CONTAINER
    name = filename(node)
    ext = extension(name)
    subtype = node.get_content_subtype()
    if ctype == "text/x-amp-html":
        return AMP
    if ctype == "image/svg+xml" or ext in SVG_EXTENSIONS:
        return SVG
    if ext in WEB_ARCHIVE_EXTENSIONS or ctype in ("application/x-mimearchive", "multipart/x-mimearchive"):
        return WEB_ARCHIVE
    if ("html" in subtype and node.get_content_maintype() in ("text", "application", "message")) \
            or ext in HTML_EXTENSIONS:
        return HTML
    if ctype in UNCHECKABLE_TYPES:
        return UNCHECKABLE
    if ctype in TNEF_TYPES or name.strip().lower() in TNEF_NAMES:
        return TNEF
    if ctype in OUTLOOK_TYPES or ext == "msg":
        return OUTLOOK_ITEM
    if ctype in CALENDAR_TYPES or ext in CALENDAR_EXTENSIONS:
        return CALENDAR
    if ctype in VCARD_TYPES or ext in VCARD_EXTENSIONS:
        return VCARD
    head = decoded_bytes(node)[:SNIFF_BYTES] if _worth_sniffing(node, ctype, ext) else b""
    if head:
        sniffed = _sniff(head)
        if sniffed:
            return sniffed
    if node.get_content_maintype() == "text" or ctype in TEXT_APPLICATION_TYPES or ctype.endswith(("+xml", "+json")) \
            or ext in TEXT_EXTENSIONS:
        return TEXT
    return BINARY


def _worth_sniffing(node: Message, ctype: str, ext: str) -> bool:
    """Generic or unreadable labels, XML (which a browser renders as XHTML or SVG by its
    namespace), and text files: what a client may render by content."""
    return (ctype in GENERIC_TYPES or node in _MALFORMED or "xml" in ctype or ext == "xml"
            or (node.get_content_maintype() != "text" and ext in TEXT_EXTENSIONS))


def _sniff(head: bytes) -> str | None:
    if head.startswith(TNEF_SIGNATURE):
        return TNEF
    lowered = head.lower()
    stripped = lowered.lstrip(b"\xef\xbb\xbf \t\r\n")
    if _SVG_NAMESPACE in lowered or (stripped.startswith((b"<?xml", b"<!doctype svg", b"<svg")) and
                                     _SVG_SIGNATURE.search(head)):
        return SVG
    if _XHTML_NAMESPACE in lowered or _HTML_SIGNATURE.match(head):
        return HTML
    if stripped.startswith(b"begin:vcalendar"):
        return CALENDAR
    if stripped.startswith(b"begin:vcard"):
        return VCARD
    return None


def set_filename(node: Message, name: str) -> None:
    """Write `name` as the part's file name wherever it had one (filename, name), RFC 2231
    encoded when it is not ASCII."""
    value = name if name.isascii() else ("utf-8", "", name)
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        if node.get_param(param, header=header) is not None or (param == "filename" and header in node):
            node.set_param(param, value, header=header.title())
