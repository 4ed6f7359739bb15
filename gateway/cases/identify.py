"""Which case and party a message belongs to: the recipient address first, then the
Message-IDs it answers (In-Reply-To, References), else the intake. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from gateway.addresses import BounceAddress, CaseAddress, IntakeAddress, Recipient, Rejected


@dataclass(frozen=True)
class CaseMatch:
    reference: str | None  # by address
    case_id: int | None  # by thread headers
    party: str
    how: str


@dataclass(frozen=True)
class IntakeMatch:
    local_part: str
    how: str


@dataclass(frozen=True)
class BounceMatch:
    token: str
    how: str


@dataclass(frozen=True)
class NoMatch:
    how: str


Match = CaseMatch | IntakeMatch | BounceMatch | NoMatch


def identify(
    recipients: Sequence[Recipient],
    thread_ids: Sequence[str],
    sent_owner: Callable[[Sequence[str]], tuple[int, str, bool] | None],
) -> Match:
    """Decide where a message goes. `sent_owner` maps Message-IDs we sent to (case id,
    party, whether that case is closed)."""
    for recipient in recipients:
        if isinstance(recipient, BounceAddress):
            return BounceMatch(recipient.token, "sent to a VERP bounce address")
    for recipient in recipients:
        if isinstance(recipient, CaseAddress):
            return CaseMatch(recipient.reference, None, recipient.party, "sent to a signed case address")
    intake = next((r for r in recipients if isinstance(r, IntakeAddress)), None)
    owner = sent_owner(thread_ids) if thread_ids else None
    if owner is not None:
        case_id, party, closed = owner
        if not (closed and intake is not None):  # a new request after closure goes to the intake
            return CaseMatch(None, case_id, party, "answers a message we sent on the case (In-Reply-To/References)")
    if intake is not None:
        return IntakeMatch(intake.local_part, f"sent to the intake address {intake.local_part}@")
    reasons = ", ".join(r.reason for r in recipients if isinstance(r, Rejected)) or "no recipient"
    return NoMatch(f"no address of ours accepted it ({reasons})")
