"""Forwarded messages (message/rfc822 parts) as a relay may carry them. Pure.

`parts.normalise` already kept only the headers a reader needs (From, To, Cc, Date,
Subject and the content headers): trace headers, Message-IDs, DKIM signatures and X-*
never cross. Here the address headers are rebuilt: a hidden address (a party's real
address, any case address) becomes the recipient's own case address, display names and
the subject have their addresses replaced as text. Header blocks of delivery reports
(message/delivery-status) are scrubbed as text.
"""

from __future__ import annotations

from email.header import Header
from email.message import Message
from email.utils import formataddr, getaddresses

from gateway.mail.parse import decode
from gateway.mail.parts import LOOP_HEADER
from gateway.mail.scrub import AddressScrubber, canonical

ADDRESS_HEADERS = ("From", "To", "Cc")


def is_our_mail(node: Message) -> bool:
    """Whether an attached message is one the gateway sent (it carries our loop header)."""
    return node.get(LOOP_HEADER) is not None


def scrub_headers(node: Message, scrubber: AddressScrubber) -> None:
    """An attached message's headers with no hidden address left."""
    del node[LOOP_HEADER]
    for name in ADDRESS_HEADERS:
        values = node.get_all(name)
        if not values:
            continue
        del node[name]
        node[name] = _addresses(values, scrubber)
    subject = node.get("Subject")
    if subject is not None:
        text = decode(subject)
        clean = scrubber.text(text)
        if clean != text:
            node.replace_header("Subject", header_text(clean))


def scrub_status(node: Message, scrubber: AddressScrubber) -> None:
    """A header block of a delivery report (Final-Recipient: rfc822; …) scrubbed as text."""
    for name, value in list(node.items()):
        text = decode(value)
        clean = scrubber.text(text)
        if clean != text:
            del node[name]
            node[name] = header_text(clean)


def _addresses(values: list, scrubber: AddressScrubber) -> str:
    pairs = getaddresses([decode(v) if isinstance(v, Header) else str(v) for v in values])
    out = []
    for name, address in pairs:
        name = scrubber.text(decode(name))
        if address and scrubber.is_hidden(canonical(address)) or scrubber.contains(address):
            address = scrubber.as_field()
        if not address and not name:
            continue
        out.append(formataddr((name, address), charset="utf-8") if address else header_text(name))
    return ", ".join(out) or "undisclosed-recipients:;"


def header_text(text: str) -> str:
    """`text` as a header value: RFC 2047 encoded when it is not ASCII."""
    return text if text.isascii() else Header(text, "utf-8").encode()
