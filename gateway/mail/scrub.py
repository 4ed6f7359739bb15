"""Addresses that must not cross from one party of a case to another, found however they
are written. Pure.

An `AddressScrubber` knows the real addresses to hide (the customer's, the merchant's,
staff's, the author's), the gateway's domain (every `case+…@domain` is a case address)
and the recipient's own case address. It finds an address written:

- in any letter case, with full-width letters (ｓｕｐｐｏｒｔ＠…), '@' and '.' as
  lookalikes (＠, ﹫, 。) or as character references and percent escapes (&#64;, &#x40;,
  %40), with invisible characters inside it (soft hyphen, zero-width space, bidi marks);
- in sanitised HTML, across tags (`supp<b></b>ort@…`): the tags stay, the text goes;
- in attribute values and URLs, percent-decoded (`mailto:support%40shop.example`).

What replaces it:
- in text, a real address becomes a label (`[address hidden]`, in the recipient's
  language); a case address of this case becomes the recipient's own case address (it
  reaches the same case, as the recipient); one of another case becomes the label;
- in an address field (a mailto: link, a calendar's ORGANIZER or ATTENDEE, a vCard's
  EMAIL, a forwarded message's From), any of them becomes the recipient's own case
  address, so the field still works and answers through the case;
- in a file name or a MIME parameter, `address-hidden`.
"""

from __future__ import annotations

import html as htmllib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence
from urllib.parse import unquote

LABELS = {"en": "[address hidden]", "fr": "[adresse masquée]"}
FILENAME_LABEL = "address-hidden"
CASE_LOCAL_PREFIX = "case+"
# Characters a reader does not see: soft hyphen, combining grapheme joiner, Arabic letter
# mark, Hangul fillers, Mongolian vowel separator, zero-width and bidi controls, word
# joiner and invisible operators, variation selectors, BOM.
INVISIBLE = ("\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f"
             "\u3164\ufe00-\ufe0f\ufeff\uffa0")
_INVISIBLE_RE = re.compile(f"[{INVISIBLE}]")
_TAG = r"<[^<>]*>"
_TAG_RE = re.compile(_TAG)
# Ways to write one character that a reader (or a client decoding a URL) takes for it.
_LOOKALIKES = {
    "@": ("\uff20", "\ufe6b"),
    ".": ("\uff0e", "\u3002", "\uff61", "\u2024"),
    "-": ("\uff0d", "\u2010", "\u2011"),
}


def _forms(char: str) -> str:
    """A regex (used with IGNORECASE) matching one address character however it may be written."""
    variants = {char, char.lower(), char.upper()}
    variants |= {chr(ord(v) - 0x21 + 0xFF01) for v in list(variants) if "!" <= v <= "~"}  # full-width
    variants |= set(_LOOKALIKES.get(char, ()))
    alternatives = ["[" + "".join(re.escape(v) for v in sorted(variants)) + "]"]
    if not char.isalnum():  # letters and digits as references are decoded by the sanitiser already
        code = ord(char)
        alternatives += [f"&#0*{code};", f"&#x0*{code:x};", f"%{code:02x}"]
        named = {"@": "&commat;", ".": "&period;", "+": "&plus;", "_": "&lowbar;", "-": "&hyphen;"}.get(char)
        if named:
            alternatives.append(re.escape(named))
    return "(?:" + "|".join(alternatives) + ")"


# Every alternative of `_pattern` writes an "@" in one of its forms: text without one cannot
# hold a hidden address, and is answered without building the (10-15 ms to compile) pattern.
_AT_RE = re.compile(_forms("@"), re.IGNORECASE)


def _literal(text: str, gap: str) -> str:
    return gap.join(_forms(c) for c in text)


@lru_cache(maxsize=256)
def _pattern(hidden: tuple[str, ...], domain: str, html: bool, bounded: bool = True) -> re.Pattern:
    """One regex for every hidden address and every case address at `domain`. `bounded`:
    not inside a longer local part, nor followed by more letters or digits (a file name is
    not bounded: "invoice-support@shop.example-label.pdf" still shows the address)."""
    gap = f"(?:[{INVISIBLE}]|{_TAG})*" if html else f"[{INVISIBLE}]*"
    before, after = (r"(?<![A-Za-z0-9._%+-])", r"(?![A-Za-z0-9])") if bounded else ("", "")
    alternatives = [_literal(address, gap) for address in sorted(hidden, key=len, reverse=True)]
    if domain:
        middle = f"(?:[A-Za-z0-9-]|[{INVISIBLE}]{'|' + _TAG if html else ''})+"
        # no gap next to `middle`: it takes invisible characters and tags itself (two
        # quantifiers over the same characters would make the search quadratic)
        alternatives.append(_literal("case", gap) + gap + _forms("+") + middle + _forms("@") + gap
                            + _literal(domain, gap))
    return re.compile(before + "(?:" + "|".join(alternatives) + ")" + after, re.IGNORECASE)


def canonical(text: str) -> str:
    """An address as a reader understands it: tags and invisible characters removed,
    references and percent escapes decoded, compatibility forms folded, lower case."""
    text = _INVISIBLE_RE.sub("", _TAG_RE.sub("", text))
    text = unquote(htmllib.unescape(text))
    return unicodedata.normalize("NFKC", text).replace("\u3002", ".").replace("\uff61", ".").strip().lower()


@dataclass(frozen=True)
class AddressScrubber:
    """Finds and replaces hidden addresses for one recipient of one relay."""

    hidden: tuple[str, ...]
    domain: str = ""
    case_reference: str = ""  # this case: its case addresses become the recipient's own
    own_address: str = ""  # the recipient's own case address
    locale: str = "en"
    _hidden_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hidden = tuple(dict.fromkeys(a.strip().lower() for a in self.hidden if a and "@" in a))
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "_hidden_set", frozenset(hidden))
        object.__setattr__(self, "domain", self.domain.strip().lower())
        object.__setattr__(self, "case_reference", self.case_reference.strip().lower())

    @classmethod
    def build(cls, hidden: Sequence[str], *, domain: str, case_reference: str, own_address: str,
              locale: str) -> AddressScrubber:
        return cls(tuple(hidden), domain=domain, case_reference=case_reference, own_address=own_address,
                   locale=locale)

    @property
    def label(self) -> str:
        return LABELS.get(self.locale.replace("_", "-").split("-", 1)[0].lower(), LABELS["en"])

    # --- what an address is ----------------------------------------------------------------
    def is_case_address(self, address: str) -> bool:
        local, _, domain = address.rpartition("@")
        return bool(self.domain) and domain == self.domain and local.startswith(CASE_LOCAL_PREFIX)

    def is_hidden(self, address: str) -> bool:
        """Whether a (canonical) address must not reach the recipient as it is."""
        return address in self._hidden_set or self.is_case_address(address)

    def _of_this_case(self, address: str) -> bool:
        local = address.rpartition("@")[0][len(CASE_LOCAL_PREFIX):]
        return bool(self.case_reference) and local.split("-", 1)[0] == self.case_reference

    def in_text(self, address: str) -> str:
        """What a hidden (canonical) address becomes in running text."""
        if self.is_case_address(address) and self._of_this_case(address) and self.own_address:
            return self.own_address
        return self.label

    def as_field(self) -> str:
        """What a hidden address becomes where an address must stand."""
        return self.own_address or f"{FILENAME_LABEL}@invalid"

    # --- scrubbing -------------------------------------------------------------------------
    def _regex(self, html: bool, bounded: bool = True) -> re.Pattern | None:
        if not self.hidden and not self.domain:
            return None
        return _pattern(self.hidden, self.domain, html, bounded)

    def contains(self, text: str) -> bool:
        if not text:
            return False
        read = canonical(text)
        if _AT_RE.search(text) is None and _AT_RE.search(read) is None:
            return False
        regex = self._regex(html=False, bounded=False)
        if regex is None:
            return False
        return regex.search(text) is not None or regex.search(read) is not None

    def text(self, text: str) -> str:
        """Plain text with every hidden address replaced."""
        if not text or _AT_RE.search(text) is None:
            return text
        regex = self._regex(html=False)
        if regex is None:
            return text
        return regex.sub(lambda m: self.in_text(canonical(m.group(0))), text)

    def html(self, html: str) -> str:
        """Sanitised HTML with every hidden address in its text replaced; tags inside an
        address are kept (so the markup stays balanced), its characters go."""
        if not html or _AT_RE.search(html) is None:
            return html
        regex = self._regex(html=True)
        if regex is None:
            return html

        def replace(match: re.Match) -> str:
            written = match.group(0)
            return htmllib.escape(self.in_text(canonical(written)), quote=False) + "".join(_TAG_RE.findall(written))

        return regex.sub(replace, html)

    def filename(self, name: str) -> str:
        """A file name or parameter value with hidden addresses replaced by a safe word."""
        if not name or _AT_RE.search(name) is None:
            return name
        regex = self._regex(html=False, bounded=False)
        if regex is None:
            return name
        return regex.sub(FILENAME_LABEL, name)

    def url(self, value: str) -> str | None:
        """An attribute value that is a URL: a mailto: naming a hidden address points to the
        recipient's own case address; any other URL that carries one is dropped (None)."""
        decoded = unquote(value)
        if not self.contains(decoded) and not self.contains(value):
            return value
        scheme = decoded.strip().split(":", 1)[0].lower()
        if scheme == "mailto" and self.own_address:
            return f"mailto:{self.own_address}"
        return None

    def attribute(self, element: str, attribute: str, value: str) -> str | None:
        """The sanitiser's hook for one (decoded) attribute value."""
        if attribute in ("href", "src", "background", "srcset", "action", "cite", "xlink:href"):
            return self.url(value)
        return self.text(value)
