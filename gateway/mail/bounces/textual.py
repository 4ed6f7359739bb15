"""Delivery reports written for people (Exim, qmail, Sendmail, Courier, OpenSMTPD, Exchange,
Gmail, Domino, Japanese carriers and many more): the report's own text, the recipients it
names and the words next to each. Pure.

Our own reader behind the same interface as the DSN and flufl.bounce detectors: it looks
only at the report's text, cut where the returned original message starts, so addresses
quoted from the original (its To: and Received: lines) are never taken for failures.
"""

from __future__ import annotations

import re
from email.message import Message

from gateway.mail.bounces.base import Failure, Verdict, failure
from gateway.mail.bounces.reasons import words_reason

_ORIGINAL_RE = re.compile(
    r"^\s*(-{2,}.*(original|unsent|returned|below this line|copy of the message|header of the original|"
    r"message follows|message headers).*|"
    r"(original message|unsent message|returned message|original message headers|original message follows)\s*[:-]*\s*|"
    r"-+\s*(original|returned) message\s*-+.*|"
    r"the (original|returned) message (is attached|follows).*|"
    r"\s*received: .*|return-path: .*)$",
    re.IGNORECASE | re.MULTILINE,
)
_ADDRESS_RE = re.compile(r"<?([a-z0-9!#$%&'*+/=?^_`{|}~.\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+)>?", re.IGNORECASE)
# Lines that name the failed address in the common formats, the address in group 1.
_RECIPIENT_LINE_RES = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"^\s*<([^<>\s]+@[^<>\s]+)>\s*:?\s*(\(.*\))?$",  # qmail, Postfix, Courier, McAfee: <addr>:
    r"^\s*<([^<>\s]+@[^<>\s]+)>[:\s].*",  # <addr>: host said / <addr>   (Unknown user addr)
    r"^\s*([^<>\s:]+@[^<>\s:]+?)\s*:?\s*$",  # Exim: an address alone on a line
    r"^\s*([^<>\s:]+@[^<>\s:]+?)(?::| on | invalid | <| \(| \[).*$",  # OpenSMTPD, Exchange 5.5, Zoho, "a@b [why]"
    r"could not be delivered to:?\s*<?([^<>\s]+@[^<>\s]+?)>?[\s.,]*$",  # KDDI, various
    r"(?:failed|undeliverable|delivery to|rejected)[^@\n]{0,60}?<([^<>\s]+@[^<>\s]+)>",
    r"^\s*(?:to|recipient|rcpt to|final-recipient|original-recipient)\s*:\s*(?:rfc822;)?\s*<?([^<>\s;]+@[^<>\s;]+?)>?\s*$",
    r"mailto:([^\s>\"]+@[^\s>\"]+)",  # Exchange 2007+: Name<mailto:addr>
    r"^\s*\"([^\"\s]+@[^\"\s]+)\"\s*:?\s*$",  # GMX: "addr":
    r"^\s*>>>\s*<?([^<>\s:]+@[^<>\s:]+?)>?(?:\s.*)?$",  # Sendmail-style ">>> addr <addr>" (Active!hunter)
    r"^\s*sent <<< rcpt to:\s*<([^<>\s]+@[^<>\s]+)>",  # InterScan MSS's transcript: the reply is on the next line
    r"following (?:recipients?|address(?:es)?)[^:\n@]{0,60}:\s*<?([^<>\s,;]+@[^<>\s,;]+?)>?[.,;]?(?:\s|$)",  # X6
))
# Exim's "malformed recipient address" report quotes the header text it could not parse
# and names the address in it that it dropped: "  a@b <c@d>: malformed address: <c@d> may
# not follow a@b".
_MALFORMED_RE = re.compile(r"^\s*\S[^\n]*?<([^<>\s]+@[^<>\s]+)>\s*:\s*malformed address:", re.IGNORECASE)
# Recipient lines that start a new recipient's block (the address alone, in any quoting).
_NEW_BLOCK_RES = (_RECIPIENT_LINE_RES[0], _RECIPIENT_LINE_RES[2], _RECIPIENT_LINE_RES[8])
_WARNING_RE = re.compile(
    r"warning: message .* (still undelivered|delayed)|this is a warning message only|will (continue|keep) (trying|to try)|"
    r"has not yet been delivered|delivery (to the following recipients? )?(has been |is )?delayed|"
    r"is still (in the queue|being retried)|will be retried|message is delayed|not yet been able to deliver|"
    r"no action is required on your part|still trying",
    re.IGNORECASE,
)
_SKIP_LINE_RE = re.compile(r"^\s*(from|to|cc|subject|date|message-id|reply-to|sender|x-[\w-]+)\s*:", re.IGNORECASE)


def report_text(message: Message) -> str:
    """The text a person reads: the text parts of the report, never those of an attached
    original message, cut where a quoted original starts."""
    chunks: list[str] = []
    _collect(message, chunks)
    text = "\n".join(chunks)
    match = _ORIGINAL_RE.search(text, pos=_first_content(text))
    return text[:match.start()] if match else text


def _first_content(text: str) -> int:
    """Skip the first lines, so a report that starts with a Received-looking line keeps it."""
    return min(len(text), 40)


def _collect(part: Message, chunks: list[str]) -> None:
    ctype = part.get_content_type()
    if ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/global",
                 "message/global-headers"):
        return
    if part.is_multipart():
        payload = part.get_payload()
        for sub in payload if isinstance(payload, list) else ():
            _collect(sub, chunks)
        return
    if ctype.startswith("text/") or ctype in ("message/delivery-status", "message/global-delivery-status"):
        chunks.append(_decoded(part))
    elif ctype.startswith("multipart/"):  # its boundary was never found: the body is one text
        chunks.append(_decoded(part))


def _decoded(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: read what is there
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = data.decode(charset, "replace")
    except LookupError:
        text = data.decode("utf-8", "replace")
    if part.get_content_type() == "text/html":
        text = re.sub(r"<br\s*/?>|</p>|</div>|</tr>", "\n", text, flags=re.IGNORECASE)
        text = re.sub(r"<[^>]+>", " ", text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text


def window(text: str, recipient: str) -> str:
    """The lines about `recipient`: from its first mention to the next blank line or
    address (at most 8 lines); the whole report when those lines give no reason."""
    block = _block(text, recipient)
    return block if block and _specific(block) else (block + "\n" + text if block else text)


def _specific(words: str) -> bool:
    return bool(words_reason(words) or re.search(r"\b[45]\d\d\b|\b[45]\.\d{1,3}\.\d{1,3}\b", words))


def _blocks(text: str, recipient: str) -> str:
    """Every block about `recipient` (at most 4): Exchange names it in the part for people
    and again in the part for administrators, where the remote server's reply is."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines) and len(out) < 4:
        block = _block_at(lines, recipient, i)
        if block is None:
            break
        first, found = block
        if found not in out:
            out.append(found)
        i = first + max(1, len(found.splitlines()))
    return "\n".join(out)


def _block(text: str, recipient: str) -> str:
    block = _block_at(text.splitlines(), recipient, 0)
    return block[1] if block else ""


def _block_at(lines: list[str], recipient: str, start: int) -> tuple[int, str] | None:
    """(index, lines) of the first block about `recipient` at or after line `start`: from
    its mention to the next blank line or address (at most 9 lines)."""
    low = recipient.lower()
    for i in range(start, len(lines)):
        line = lines[i]
        if low in line.lower() and not _SKIP_LINE_RE.match(line):
            block = [line]
            for nxt in lines[i + 1:i + 9]:
                if not nxt.strip() and len(block) > 1:
                    break
                found = {a.lower() for a in _ADDRESS_RE.findall(nxt)}
                if found and low not in found and any(p.match(nxt) for p in _NEW_BLOCK_RES):
                    break
                block.append(nxt)
            return i, "\n".join(block)
    return None


def recipients(text: str) -> list[str]:
    """Failed addresses named in a report's text, in order, without duplicates."""
    found: list[str] = []
    for line in text.splitlines():
        if _SKIP_LINE_RE.match(line):
            continue
        for pattern in (_MALFORMED_RE, *_RECIPIENT_LINE_RES):
            match = pattern.search(line)
            if match:
                address = match.group(1).strip("<>.,;:()\"'").lower()
                if "@" in address and _ADDRESS_RE.fullmatch(address) and address not in found:
                    found.append(address)
                break
    return found


def is_warning(text: str) -> bool:
    """Whether a report says the message is only delayed and still being tried."""
    return bool(_WARNING_RE.search(text))


def failures_for(addresses: list[str], text: str) -> tuple[Failure, ...]:
    """One failure per address, each read from the words next to it."""
    gave_up = not is_warning(text)
    out = []
    for address in addresses:
        words = _diagnostic(_blocks(text, address) or window(text, address), address)
        out.append(failure(address, None, words, gave_up=gave_up, context=window(text, address)))
    return tuple(out)


def _diagnostic(words: str, address: str) -> str:
    lines = [" ".join(line.split()) for line in words.splitlines() if line.strip()]
    return " ".join(lines)[:1000]


def _ignored(address: str, message: Message) -> bool:
    """Our own envelope addresses and the report's sender are never the failed recipient."""
    low = address.lower()
    for name in ("From", "To"):
        if low in str(message.get(name, "")).lower():
            return True
    local = low.split("@", 1)[0]
    return local in ("mailer-daemon", "postmaster") or local.startswith("bounce+")


def detect(message: Message) -> Verdict:
    """Failures named in the report's own text (our reader for non-DSN reports)."""
    text = report_text(message)
    # An address in a report counts only with a reason or an SMTP code next to it: a
    # person's message that merely quotes an address and the word "returned" is no report.
    candidates = [a for a in recipients(text) if not _ignored(a, message)]
    named = [a for a in candidates if _specific(_block(text, a))]
    if not named and _specific(text):
        # The reason is written above the list (EZweb, some Japanese carriers): an address
        # alone on its line, in angle brackets, is the failed recipient.
        named = [a for a in candidates if any(_RECIPIENT_LINE_RES[0].match(line) and a in line.lower()
                                              for line in text.splitlines())]
    if not named and _specific(text) and len(candidates) == 1 and any(
            _RECIPIENT_LINE_RES[i].search(line) and candidates[0] in line.lower()
            for i in (0, 6) for line in text.splitlines()):
        # One labelled recipient ("RCPT TO: addr", Apache James) under a reason written above it.
        named = candidates
    if not named:
        # Addresses listed under a heading that says they failed (Lotus Notes' "Failure
        # Reasons", with a reason in the local language or none at all).
        named = [a for a in candidates if a in _listed_as_failed(text)]
    if not named and not candidates and _specific(text) and _FAILED_RE.search(text):
        # The report says delivery failed and why but names nobody (MMS gateways): the
        # returned original's only recipient is the one that failed.
        named = [a for a in _original_recipients(message) if not _ignored(a, message)][:1]
    failed = _header_recipients(message) or named
    if not failed:
        return Verdict.none("text")
    return Verdict(failures_for(failed, text), "text")


_FAILED_RE = re.compile(r"could not be delivered|undeliverable|delivery (has )?failed|not (been )?delivered|"
                        r"failed to deliver|unable to deliver|permanent (error|failure)|"
                        # Sendmail (V5 and later): the SMTP transcript of a delivery that did not happen
                        r"-{3,} *transcript of session follows *-{3,}", re.IGNORECASE)
# Section headings under which a report lists the recipients that failed, one per line
# (Lotus Notes' "--- Failure Reasons ---", MailMarshal's "The following recipients were
# affected:" under the reason it could not deliver).
_FAILED_SECTION_RE = re.compile(r"^\s*(-{3,}\s*(failure reasons)\s*-{3,}|"
                                r"the following recipients? (were|was) affected\s*:)\s*$", re.IGNORECASE)
_SECTION_END_RE = re.compile(r"^\s*(-{3,}.*-{3,}|={3,})\s*$")


def _listed_as_failed(text: str) -> set[str]:
    """Addresses alone on their line under a failure heading, up to the next heading."""
    found: set[str] = set()
    inside = False
    for line in text.splitlines():
        if _FAILED_SECTION_RE.match(line):
            inside = True
        elif inside and _SECTION_END_RE.match(line):
            inside = False
        elif inside:
            match = _RECIPIENT_LINE_RES[2].match(line) or _RECIPIENT_LINE_RES[0].match(line)
            if match:
                found.add(match.group(1).strip("<>").lower())
    return found
_ORIGINAL_TO_RE = re.compile(r"^to:\s*(.+)$", re.IGNORECASE | re.MULTILINE)


def _original_recipients(message: Message) -> list[str]:
    """The addresses on the To: line of the returned original: an attached message's
    header, else the To: line after the report's "original message" marker. Only a single
    recipient counts (an original sent to several says nothing about which one failed)."""
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            value = str(inner.get("To", "")) if inner is not None else ""
            if not value and isinstance(payload, str):
                match = _ORIGINAL_TO_RE.search(payload)
                value = match.group(1) if match else ""
            found = {a.lower() for a in _ADDRESS_RE.findall(value)}
            return sorted(found) if len(found) == 1 else []
    chunks: list[str] = []
    _collect(message, chunks)
    text = "\n".join(chunks)
    marker = _ORIGINAL_RE.search(text, pos=_first_content(text))
    if not marker:
        return []
    match = _ORIGINAL_TO_RE.search(text, marker.start())
    found = {a.lower() for a in _ADDRESS_RE.findall(match.group(1))} if match else set()
    return sorted(found) if len(found) == 1 else []


def _header_recipients(message: Message) -> list[str]:
    """X-Failed-Recipients (Exim, Gmail): the MTA's own machine-readable list."""
    values = message.get_all("X-Failed-Recipients") or []
    found: list[str] = []
    for value in values:
        for address in _ADDRESS_RE.findall(" ".join(str(value).split())):
            if address.lower() not in found:
                found.append(address.lower())
    return found
