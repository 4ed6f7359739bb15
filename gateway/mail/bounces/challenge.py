"""Challenge-response requests (TMDA, BoxTrapper, Spam Arrest, Mailinblack, ChoiceMail):
the recipient's filter holds our message until a person proves they are one. Recorded,
never answered automatically, never a bounce. Pure."""

from __future__ import annotations

import re
from email.message import Message

from gateway.mail.bounces.base import Verdict
from gateway.mail.bounces.reasons import Reason

_HEADERS = ("X-Boxtrapper", "X-Spam-Arrest", "X-Mailinblack", "X-TMDA-Confirm", "X-ChoiceMail-Registration-Request",
            "X-Challenge", "X-Delivery-Confirmation-Request")
_WORDS_RE = re.compile(
    r"(confirm (that )?you are (a )?(human|real person)|prove (that )?you are (a )?human|"
    r"challenge[- ]response|verify (that )?you are (a )?(human|person)|your message (is|has been) (held|quarantined) "
    r"(until|pending) (you|your) (confirm|verif)|reply to this (message|email) to (confirm|release)|"
    r"mailinblack|boxtrapper|spam arrest|choicemail|tmda|confirmez que vous [eê]tes (un|une) (humain|personne))",
    re.IGNORECASE,
)


def detect(message: Message, text: str) -> Verdict:
    """A challenge request, from the vendor's header or the request's own words."""
    for name in _HEADERS:
        if message.get(name) is not None:
            return Verdict.report(Reason.CHALLENGE, "challenge", diagnostic=f"{name} header")
    subject = str(message.get("Subject", ""))
    match = _WORDS_RE.search(subject + "\n" + text[:4000])
    if match:
        return Verdict.report(Reason.CHALLENGE, "challenge", diagnostic=match.group(0)[:200])
    return Verdict.none("challenge")
