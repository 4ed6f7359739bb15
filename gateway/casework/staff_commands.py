"""Mail from staff on a case: the commands at its head (#note, #close, #reopen, #to, ...)
applied, then its text relayed to the parties it names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from gateway import rights
from gateway.dispositions import Disposition
from gateway.cases import commands as command_reader
from gateway.cases.commands import Command
from gateway.cases.machine import CaseState, EventKind
from gateway.casework import delivery_reports, history, holding, lifecycle, readers, record
from gateway.casework.record import move, record_inbound
from gateway.casework.work import Step
from gateway.export import staff as export_staff
from gateway.mail.rewrite import replace_body
from gateway.models import Case, Message
from gateway.notices import Notice


VALID_STAFF_COMMANDS = ("#to customer | #to merchant | #to both", "#note", "#close <note>", "#reopen",
                        "#type <name>", "#release <id>", "#retry", "#unfreeze", "#export")


def handle(step: Step, case: Case, joined: bool) -> None:
    message = record_inbound(step, case, "s")
    found = command_reader.read(step.parsed.new_text)
    record.note(step, case, EventKind.MESSAGE_RECEIVED, party="s", message=message,
                commands=[c.name for c in found.commands])
    problem = _staff_command_problem(found)
    if problem:  # nothing was done: the case still waits for staff (follow-ups keep running)
        tell_staff(step, case, problem)
        step.done(Disposition.CASE, f"case {case.reference.upper()}: staff command refused: {problem}", case_id=case.id)
        return
    record.wrote(case, "s", step.now)
    order = Order(found, message)
    for name, apply_command in COMMANDS.items():
        if (command := found.first(name)) is not None and apply_command(step, case, command, order):
            return  # the command settled the message (#note, #close, #export on a closed case)
    refused = order.refused
    # by default staff write to both parties, but never to a merchant the case never reached
    target = "both" if history.merchant_involved(step, case) or case.category == "delivery" else "c"
    if to_command := found.first("to"):
        target = command_reader.to_target(to_command.argument) or "both"
    targets = ["c", "m"] if target == "both" else [target]
    if "m" in targets and not lifecycle.merchant_reachable(step, case):
        targets.remove("m")
        if target == "m":
            refused.append("#to merchant: the merchant's address is marked invalid; nothing was sent")
    if refused:
        tell_staff(step, case, "; ".join(refused))
    if found.commands and not found.body or not targets:
        applied = ", ".join(c.name for c in found.commands)
        step.done(Disposition.CASE, f"case {case.reference.upper()}: staff commands: {applied}"
                  f"{'; refused: ' + '; '.join(refused) if refused else ''}", case_id=case.id)
        return
    sent = readers.relay_to(step, case, "s", targets, transform=replace_body(found.body))
    if target == "m" and "m" in sent:
        record.merchant_asked(case, step.now)  # a question for the merchant alone: it owes staff an answer
    move(step, case, EventKind.STAFF_WROTE, party="s", message=message, to=target)
    step.done(Disposition.CASE, f"case {case.reference.upper()}: staff message relayed to {','.join(sent) or 'nobody'}", case_id=case.id)


@dataclass
class Order:
    """A staff message's commands as they are applied: what was read, the message, and what was refused."""

    found: command_reader.Commands
    message: Message
    refused: list[str] = field(default_factory=list)


def _export(step: Step, case: Case, command: Command, order: Order) -> bool:
    """The evidence bundle, to the staff member who asked (gateway/export/staff.py)."""
    export_staff.answer(step, case)
    if case.state == CaseState.CLOSED.value and not order.found.first("reopen"):
        step.done(Disposition.CASE, f"case {case.reference.upper()}: evidence bundle exported (#export)", case_id=case.id)
        return True
    return False


def _note(step: Step, case: Case, command: Command, order: Order) -> bool:
    record.note(step, case, EventKind.STAFF_NOTE, party="s", message=order.message)
    step.done(Disposition.CASE, f"case {case.reference.upper()}: internal staff note recorded", case_id=case.id)
    return True


def _reopen(step: Step, case: Case, command: Command, order: Order) -> bool:
    if case.state == CaseState.CLOSED.value and not lifecycle.reopen(step, case, party="s", inbound_id=step.inbound.id):
        order.refused.append("#reopen: another case is open for the same transaction")
    return False


def _unfreeze(step: Step, case: Case, command: Command, order: Order) -> bool:
    record.flag(step, case, EventKind.CASE_UNFROZEN, party="s")
    return False


def _type(step: Step, case: Case, command: Command, order: Order) -> bool:
    record.set_dispute_type(case, rights.parse_type_name(command.argument))
    record.note(step, case, EventKind.TYPE_SET, party="s", dispute_type=case.dispute_type)
    return False


def _release(step: Step, case: Case, command: Command, order: Order) -> bool:
    if not holding.release(step, case, int(command.argument.lstrip("#"))):
        order.refused.append(f"#release {command.argument}: no message held on this case has that number")
    return False


def _retry(step: Step, case: Case, command: Command, order: Order) -> bool:
    if not delivery_reports.retry_merchant(step, case):
        order.refused.append("#retry: nothing to send again, or the merchant's address is still marked invalid "
                             "(re-import the merchant first)")
    return False


def _close(step: Step, case: Case, command: Command, order: Order) -> bool:
    lifecycle.close(step, case, EventKind.STAFF_CLOSED, party="s", note=command.argument or order.found.body,
                    inbound_id=step.inbound.id)
    step.done(Disposition.CASE, f"case {case.reference.upper()}: closed by staff (#close)", case_id=case.id)
    return True


# The staff commands, in the order they apply (#to is where the text goes, read after them);
# each returns True when it settled the message.
COMMANDS: dict[str, Callable[[Step, Case, Command, Order], bool]] = {
    "export": _export,
    "note": _note,
    "reopen": _reopen,
    "unfreeze": _unfreeze,
    "type": _type,
    "release": _release,
    "retry": _retry,
    "close": _close,
}


def tell_staff(step: Step, case: Case, problem: str) -> None:
    """Answer the staff member who wrote: what was not done and why."""
    step.mailer.notice(Notice.STAFF_UNKNOWN_COMMAND, case, "s", {"problem": problem, "valid": VALID_STAFF_COMMANDS},
                       inbound_id=step.inbound.id, only_to=step.parsed.from_address)


def _staff_command_problem(found) -> str | None:
    """Why staff commands cannot be applied, or None."""
    misplaced = None if found.first("note") or found.first("close") else command_reader.misplaced(found.body)
    if misplaced:
        return (f"{misplaced} is below other text; commands must be the first lines of your message "
                "(nothing was sent, so that a #note or #to line is never relayed by mistake)")
    if found.unknown:
        return f"unknown command #{found.unknown[0].name}"
    if (command := found.first("to")) and command_reader.to_target(command.argument) is None:
        return f"#to needs customer, merchant or both, not {command.argument!r}"
    if (command := found.first("type")) and rights.parse_type_name(command.argument) is None:
        return f"unknown dispute type {command.argument!r} (valid: {', '.join(rights.DISPUTE_TYPES)})"
    if (command := found.first("release")) and not command.argument.lstrip("#").isdigit():
        return "#release needs the number of the held message"
    return None
