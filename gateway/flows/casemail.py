"""Mail from a party on a case: sender check, then relay to whoever must read it."""

from __future__ import annotations

from gateway import store
from gateway.addresses import PARTY_NAMES
from gateway.cases import commands as command_reader
from gateway.cases.machine import CaseState, EventKind
from gateway.flows import opening
from gateway.flows.step import Step, sender_matches
from gateway.mail.classify import Kind
from gateway.mail.rewrite import remove_lines
from gateway.models import Case
from gateway.notices import Notice


def registered_addresses(step: Step, case: Case, party: str) -> list[str]:
    if party == "c":
        return [case.customer_email]
    if party == "m":
        merchant = store.merchant(step.db, case.merchant_id)
        return [merchant.support_email] if merchant else []
    return list(step.settings.gateway.staff_addresses)


def handle(step: Step, case: Case, party: str, *, joined: bool = False) -> None:
    """Handle a message written by `party` on `case` (joined: it came through the intake)."""
    kind = step.classification.kind
    if kind is Kind.LOOP:
        message = opening.record_inbound(step, case, party, kind="loop")
        store.add_event(step.db, case, "loop_dropped", at=step.now, party=party, message=message,
                        reason=step.classification.reason)
        step.done(f"case {case.reference}: our own mail came back; recorded, dropped", case_id=case.id)
        return
    if step.classification.automatic:
        message = opening.record_inbound(step, case, party, kind=kind.value)
        store.add_event(step.db, case, f"{kind.value}_recorded", at=step.now, party=party, message=message,
                        reason=step.classification.reason)
        step.done(f"case {case.reference}: {kind.value} from the {PARTY_NAMES[party]} recorded, not relayed",
                  case_id=case.id)
        return
    policy = step.settings.gateway.sender_policy.for_party(party)
    if not sender_matches(step.parsed.from_address, registered_addresses(step, case, party), policy):
        _hold(step, case, party, policy)
        return
    if case.state == CaseState.CLOSED.value:
        message = opening.record_inbound(step, case, party)
        store.add_event(step.db, case, "mail_to_closed_case", at=step.now, party=party, message=message)
        step.done(f"case {case.reference}: closed; message recorded, not relayed", case_id=case.id)
        return
    if case.frozen:
        message = opening.record_inbound(step, case, party)
        store.add_event(step.db, case, "frozen_message_kept", at=step.now, party=party, message=message)
        step.done(f"case {case.reference}: frozen; message recorded, not relayed", case_id=case.id)
        return
    {"c": _from_customer, "m": _from_merchant, "s": _from_staff}[party](step, case, joined)


def _hold(step: Step, case: Case, party: str, policy: str) -> None:
    reason = f"From address does not match the registered {PARTY_NAMES[party]} address ({policy} policy)"
    message = opening.record_inbound(step, case, party, held_reason=reason)
    store.add_event(step.db, case, "message_held", at=step.now, party=party, message=message, reason=reason)
    step.mailer.notice(Notice.STAFF_HELD_MESSAGE, case, "s",
                       {"held": {"id": message.id, "party": PARTY_NAMES[party], "reason": reason,
                                 "subject": step.parsed.subject[:200]}},
                       inbound_id=step.inbound.id)
    step.done(f"case {case.reference}: held for staff: {reason}", case_id=case.id)


def _relay_to(step: Step, case: Case, author: str, targets: list[str], transform=None) -> list[str]:
    sent = []
    for target in dict.fromkeys(targets):
        if step.mailer.relay(case, step.inbound.raw, author=author, to_party=target,
                             inbound_id=step.inbound.id, transform=transform):
            sent.append(target)
    if sent:
        store.add_event(step.db, case, "relayed", at=step.now, party=author, to=",".join(sent))
    return sent


def _merchant_reachable(step: Step, case: Case) -> bool:
    merchant = store.merchant(step.db, case.merchant_id)
    return merchant is not None and not merchant.address_invalid


def _from_customer(step: Step, case: Case, joined: bool) -> None:
    message = opening.record_inbound(step, case, "c")
    case.last_customer_message_at = step.now
    store.add_event(step.db, case, "message_received", at=step.now, party="c", message=message, joined=joined)
    if case.state == CaseState.NEEDS_INFO.value:
        category = opening.category_answer(step.parsed.new_text or step.parsed.subject)
        if category is None:
            step.mailer.notice(Notice.ASK_CATEGORY, case, "c", inbound_id=step.inbound.id)
            step.done(f"case {case.reference}: category still unknown; asked again", case_id=case.id)
            return
        case.category = category
        opening.open_case(step, case, first_message=False)
        return
    targets = []
    if case.category == "payment" or not _merchant_reachable(step, case):
        targets.append("s")
    else:
        targets.append("m")
    if case.escalated:
        targets.append("s")
    sent = _relay_to(step, case, "c", targets)
    opening.move(step, case, EventKind.CUSTOMER_REPLIED, party="c", message=message)
    step.done(f"case {case.reference}: customer message relayed to {','.join(sent) or 'nobody'}", case_id=case.id)


def _from_merchant(step: Step, case: Case, joined: bool) -> None:
    message = opening.record_inbound(step, case, "m")
    store.add_event(step.db, case, "message_received", at=step.now, party="m", message=message)
    targets = ["c"] + (["s"] if case.escalated else [])
    sent = _relay_to(step, case, "m", targets)
    opening.move(step, case, EventKind.MERCHANT_REPLIED, party="m", message=message)
    step.done(f"case {case.reference}: merchant message relayed to {','.join(sent) or 'nobody'}", case_id=case.id)


def _from_staff(step: Step, case: Case, joined: bool) -> None:
    message = opening.record_inbound(step, case, "s")
    found = command_reader.read(step.parsed.new_text)
    store.add_event(step.db, case, "message_received", at=step.now, party="s", message=message,
                    commands=[c.name for c in found.commands])
    if found.first("note"):
        store.add_event(step.db, case, "staff_note", at=step.now, party="s", message=message)
        step.done(f"case {case.reference}: internal staff note recorded", case_id=case.id)
        return
    target = "both"
    to_command = found.first("to")
    if to_command is not None:
        target = command_reader.to_target(to_command.argument) or "both"
    targets = ["c", "m"] if target == "both" else [target]
    if "m" in targets and not _merchant_reachable(step, case):
        targets.remove("m")
    sent = _relay_to(step, case, "s", targets, transform=remove_lines(found.lines_removed))
    kind = {"c": EventKind.STAFF_ASKED_CUSTOMER, "m": EventKind.STAFF_ASKED_MERCHANT}.get(target, EventKind.STAFF_ASKED_BOTH)
    opening.move(step, case, kind, party="s", message=message)
    step.done(f"case {case.reference}: staff message relayed to {','.join(sent) or 'nobody'}", case_id=case.id)
