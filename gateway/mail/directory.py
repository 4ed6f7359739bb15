"""Calendar invitations (iCalendar, RFC 5545) and contact cards (vCard, RFC 6350) with no
hidden address left in them. Pure.

Both are "content lines" (`NAME;PARAM=value:value`, folded at 75 octets). Each logical
line is unfolded (vCard 2.1 quoted-printable soft breaks included), and:

- an address property (ORGANIZER, ATTENDEE, CONTACT and the like in a calendar; EMAIL
  in a card) that names a hidden address gets the recipient's own case address, so an
  invitation can still be answered and a contact still written to, through the case;
- a `mailto:` parameter (SENT-BY, DELEGATED-TO, MEMBER...) the same; every other
  parameter (CN="Shop <support@…>") and value (DESCRIPTION, SUMMARY, NOTE...) has its
  addresses replaced as text;
- quoted-printable and base64 text values are decoded first (and written back plain);
- an HTML description (X-ALT-DESC;FMTTYPE=text/html, which Outlook shows) is sanitised.

Lines that need no change keep their exact bytes and folding.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from typing import Callable

from gateway.mail.scrub import AddressScrubber

CALENDAR_ADDRESS_PROPERTIES = frozenset({"ORGANIZER", "ATTENDEE", "CONTACT", "X-MS-OLK-SENDER", "X-ORGANIZER",
                                         "REPLY-TO", "X-WR-RELCALID"})
VCARD_ADDRESS_PROPERTIES = frozenset({"EMAIL"})
BINARY_PROPERTIES = frozenset({"PHOTO", "LOGO", "SOUND", "KEY", "ATTACH"})
FOLD_OCTETS = 75
_NAME = re.compile(r"^(?:[A-Za-z0-9-]+\.)?([A-Za-z0-9-]+)")

SanitizeHtml = Callable[[str], str]


def scrub_calendar(text: str, scrubber: AddressScrubber, sanitize_html: SanitizeHtml) -> str:
    return _scrub(text, scrubber, CALENDAR_ADDRESS_PROPERTIES, sanitize_html)


def scrub_vcard(text: str, scrubber: AddressScrubber, sanitize_html: SanitizeHtml) -> str:
    return _scrub(text, scrubber, VCARD_ADDRESS_PROPERTIES, sanitize_html)


def _scrub(text: str, scrubber: AddressScrubber, address_properties: frozenset[str],
           sanitize_html: SanitizeHtml) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"
    out: list[str] = []
    for physical, logical in _logical_lines(text.splitlines()):
        new = _line(logical, scrubber, address_properties, sanitize_html)
        out.extend(physical if new == logical else _fold(new))
    ending = newline if text.endswith(("\n", "\r")) else ""
    return newline.join(out) + ending


def _logical_lines(lines: list[str]):
    """(physical lines, unfolded line) pairs. A line starting with a space or tab continues
    the previous one; so does the line after a quoted-printable value ending in '='."""
    group: list[str] = []
    logical = ""
    for line in lines:
        if group and (line[:1] in (" ", "\t")):
            group.append(line)
            logical += line[1:]
            continue
        if group and logical.endswith("=") and _is_quoted_printable(logical):
            group.append(line)
            logical = logical[:-1] + line
            continue
        if group:
            yield group, logical
        group, logical = [line], line
    if group:
        yield group, logical


def _split(line: str) -> tuple[str, list[str], str] | None:
    """(name, parameters, value) of a content line; quoted parameter values may hold ':' and ';'."""
    colon = line.find(":")
    if colon < 0:
        return None
    if '"' not in line[:colon]:  # the usual line: no quoted parameter
        name, *params = line[:colon].split(";")
        return name, params, line[colon + 1:]
    params: list[str] = []
    current, quoted = [], False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in ";:":
            params.append("".join(current))
            current = []
            if char == ":":
                return params[0], params[1:], line[index + 1:]
            continue
        current.append(char)
    return None


def _is_quoted_printable(line: str) -> bool:
    head = line.split(":", 1)[0].upper()
    return "QUOTED-PRINTABLE" in head


def _line(line: str, scrubber: AddressScrubber, address_properties: frozenset[str],
          sanitize_html: SanitizeHtml) -> str:
    parts = _split(line)
    if parts is None:
        return scrubber.text(line)
    name, params, value = parts
    match = _NAME.match(name)
    prop = match.group(1).upper() if match else name.upper()
    params, value = _decoded(prop, params, value)
    decoded = ";".join([name, *params]) + ":" + value
    new_params = [_param(p, scrubber) for p in params]
    if prop in BINARY_PROPERTIES and not value.lower().startswith(("mailto:", "http")):
        new_value = value
    elif prop in address_properties:
        new_value = _address_value(value, scrubber)
    elif prop == "X-ALT-DESC" and any("text/html" in p.lower() for p in params):
        new_value = _escape(scrubber.html(sanitize_html(_unescape(value))))
    else:
        new_value = scrubber.text(value)
    new = ";".join([name, *new_params]) + ":" + new_value
    return line if new == decoded else new  # decoded only to look: unchanged lines keep their encoding


def _decoded(prop: str, params: list[str], value: str) -> tuple[list[str], str]:
    """Quoted-printable and base64 text values decoded (the encoding parameter dropped)."""
    upper = [p.upper() for p in params]
    charset = next((p.split("=", 1)[1].strip('"') for p in params if p.upper().startswith("CHARSET=")), "utf-8")
    if "ENCODING=QUOTED-PRINTABLE" in upper or "QUOTED-PRINTABLE" in upper:
        data = quopri.decodestring(value.encode("utf-8", "replace"))
        kept = [p for p in params if p.upper() not in ("ENCODING=QUOTED-PRINTABLE", "QUOTED-PRINTABLE")
                and not p.upper().startswith("CHARSET=")]
        return kept + ["CHARSET=UTF-8"], _text(data, charset)
    if prop not in BINARY_PROPERTIES and ({"ENCODING=B", "ENCODING=BASE64", "BASE64"} & set(upper)):
        try:
            data = base64.b64decode(value.strip(), validate=False)
            decoded = data.decode(charset if charset.lower() != "utf-8" else "utf-8")
        except (binascii.Error, UnicodeDecodeError, LookupError, ValueError):
            return params, value
        kept = [p for p in params if p.upper() not in ("ENCODING=B", "ENCODING=BASE64", "BASE64", "VALUE=BINARY")]
        return kept, decoded
    return params, value


def _text(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _param(param: str, scrubber: AddressScrubber) -> str:
    key, equals, value = param.partition("=")
    if not equals:
        return param
    values = value.split(",")
    new = [_address_value(v, scrubber) if v.strip('"').lower().startswith("mailto:") else scrubber.text(v)
           for v in values]
    return key + "=" + ",".join(new)


def _address_value(value: str, scrubber: AddressScrubber) -> str:
    """A cal-address or e-mail value: a hidden address becomes the recipient's case address."""
    quoted = value.startswith('"') and value.endswith('"') and len(value) > 1
    bare = value[1:-1] if quoted else value
    if not scrubber.contains(bare):
        return value
    new = ("mailto:" if bare.strip().lower().startswith("mailto:") else "") + scrubber.as_field()
    return f'"{new}"' if quoted else new


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace(
        "\n", "\\n")


def _fold(line: str) -> list[str]:
    """A content line folded at 75 octets, never inside a UTF-8 sequence."""
    if line.isascii():
        return [line[:FOLD_OCTETS]] + [" " + line[i:i + FOLD_OCTETS - 1]
                                       for i in range(FOLD_OCTETS, len(line), FOLD_OCTETS - 1)]
    out: list[str] = []
    current, size = "", 0
    for char in line:
        width = len(char.encode("utf-8"))
        limit = FOLD_OCTETS if not out else FOLD_OCTETS - 1
        if size + width > limit:
            out.append(current)
            current, size = "", 0
        current += char
        size += width
    out.append(current)
    return [out[0]] + [" " + piece for piece in out[1:]]
