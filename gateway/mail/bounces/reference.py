"""Our reading of a report joined with the reference analyser's (Sisimai). Pure.

Where Sisimai reads a report, its reading is the verdict: its recipients, its reason, its
hard/soft decision, its status code and the remote server's words (the report's own
Remote-MTA field, as we read it, names the remote host where there is one). Our own reading stays
where it is the more certain one or where Sisimai could not decide:

- reports our certain detectors recognise by their structure (an ARF complaint, Amazon
  SES's JSON notice, a challenge-response request) stay ours;
- a recipient we read as `delayed` stays delayed: a warning (Exim's "has not yet been
  delivered"), whatever Sisimai 4.25 calls it; the message is still queued and must not be
  sent again;
- where Sisimai says `onhold` or `undefined` (it could not decide), our reason for that
  recipient stands, as does our `authfailure` (SPF/DKIM/DMARC) where Sisimai 4.25, which
  has no such name, says `blocked` or `securityerror`;
- where Sisimai names no recipient, or its placeholder for one, ours is used; where our
  DSN reading kept the address as we sent it beside the mailbox it was rewritten to, the
  address as we sent it is the recipient (that is what our outbox row knows).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Protocol

from gateway.mail.bounces.base import Failure, FailureKind, Reason, Verdict

__all__ = ["Analyser", "Entry", "merged"]

PLACEHOLDER = "undisclosed-recipient-in-headers@libsisimai.org.invalid"
UNDECIDED = frozenset({"onhold", "undefined"})
CERTAIN_DETECTORS = frozenset({"arf", "ses", "challenge"})
# our reasons that Sisimai 4.25 has no name for, and the names it files them under
FINER = {Reason.AUTH_FAILURE: frozenset({"blocked", "securityerror"})}
_REASONS = {reason.value: reason for reason in Reason}


@dataclass(frozen=True)
class Entry:
    """What Sisimai says about one recipient."""

    recipient: str
    reason: str  # Sisimai's name
    status: str = ""
    soft: int = -1  # Sisimai's softbounce: 1 soft, 0 hard, -1 neither (a success, a complaint)
    action: str = ""
    diagnostic: str = ""
    remote_mta: str = ""
    agent: str = ""  # Sisimai's name for the MTA that wrote the report

    @classmethod
    def from_sisimai(cls, fields: dict) -> "Entry":
        recipient = str(fields.get("recipient") or "").lower()
        return cls(recipient="" if recipient == PLACEHOLDER else recipient, reason=str(fields.get("reason") or ""),
                   status=str(fields.get("status") or ""), soft=int(fields.get("soft", -1)),
                   action=str(fields.get("action") or "").lower(), diagnostic=_text(fields.get("diagnostic")),
                   remote_mta=str(fields.get("rhost") or ""), agent=str(fields.get("agent") or ""))

    @property
    def permanent(self) -> bool:
        if self.soft in (0, 1):
            return self.soft == 0
        return self.status.startswith("5")


class Analyser(Protocol):
    def read(self, raw: bytes) -> "list[Entry] | None":
        """The analyser's entries for one report ([] when it reads no failure), None when it
        could not answer."""


def merged(ours: Verdict, theirs: Iterable[Entry]) -> Verdict:
    """One verdict from ours and Sisimai's entries for the same report (module docstring)."""
    theirs = [entry for entry in theirs if entry.reason]
    if not theirs or ours.detected_by in CERTAIN_DETECTORS:
        return ours
    if all(entry.reason == "vacation" for entry in theirs) and ours:
        return ours
    used: set[int] = set()
    failures = []
    for index, entry in enumerate(theirs):
        mine = _ours_for(ours.failures, entry, index, len(theirs), used)
        failures.append(_one(entry, mine))
    return Verdict(tuple(_unique(failures)), f"sisimai+{ours.detected_by}" if ours else "sisimai")


def _one(entry: Entry, mine: Failure | None) -> Failure:
    recipient = entry.recipient
    final = None
    if mine is not None and (not recipient or mine.final_recipient == recipient):
        recipient, final = mine.recipient, mine.final_recipient
    if mine is not None and (mine.kind is FailureKind.DELAYED or entry.reason in UNDECIDED
                             or entry.reason in FINER.get(mine.reason, ())):
        return replace(mine, recipient=recipient or mine.recipient)
    reason = Reason.DELAYED if entry.action == "delayed" else _REASONS.get(entry.reason, Reason.UNDEFINED)
    status = entry.status or (mine.status if mine else None)
    diagnostic = entry.diagnostic or (mine.diagnostic if mine else None)
    return Failure(recipient, reason, status or None, (diagnostic or None) and diagnostic[:2000], entry.permanent,
                   (mine.remote_mta if mine else None) or entry.remote_mta or None, final)


def _ours_for(failures: tuple[Failure, ...], entry: Entry, index: int, count: int,
              used: set[int]) -> Failure | None:
    """Our entry for the recipient Sisimai names: the same address (or the mailbox it was
    rewritten to); with no address to go by, ours in the same place when both list as many."""
    for position, mine in enumerate(failures):
        if entry.recipient and entry.recipient in (mine.recipient, mine.final_recipient) and position not in used:
            used.add(position)
            return mine
    if not entry.recipient and (len(failures) == count or len(failures) == 1):
        position = index if len(failures) == count else 0
        used.add(position)
        return failures[position]
    return None


def _unique(failures: list[Failure]) -> list[Failure]:
    seen, out = set(), []
    for one in failures:
        if one.recipient and one.recipient in seen:
            continue
        seen.add(one.recipient)
        out.append(one)
    return out


def _text(value) -> str:
    """Sisimai's words as text: JSON's \\u00XX escapes of raw bytes, read back as UTF-8 when they are."""
    text = str(value or "")
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
