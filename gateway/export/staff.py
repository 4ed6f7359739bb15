"""`#export` on the staff case address: the bundle goes back to the staff member who
asked, attached when it is at most `[export] max_attachment_bytes`, otherwise with the
path where an administrator finds it. Either way it is kept in `[export] directory`
and recorded as an event on the case."""

from __future__ import annotations

import logging

from gateway.export import service
from gateway.notices import Notice

log = logging.getLogger(__name__)


def answer(step, case) -> None:
    """Export `case` and answer the staff member who wrote `step`'s message."""
    settings = step.settings
    try:
        result = service.export_case(step.db, case, settings=settings, now=step.now,
                                     by=f"staff {step.parsed.from_address}", party="s")
    except OSError as error:  # the export folder is missing, full or not writable
        log.error("case %s: #export failed: %s", case.reference.upper(), error)
        step.mailer.notice(Notice.STAFF_EXPORT, case, "s", {"export": {
            "ok": False, "problem": f"{type(error).__name__}: {error.strerror or error}",
            "directory": str(settings.export.directory)}},
            inbound_id=step.inbound.id, only_to=step.parsed.from_address)
        return
    attached = result.size <= settings.export.max_attachment_bytes
    context = {"export": {"ok": True, "attached": attached, "file": result.path.name, "path": str(result.path),
                          "size": result.size, "limit": settings.export.max_attachment_bytes,
                          "sha256": result.sha256, "chain_head": result.chain_head, "events": result.events,
                          "pages": result.pages, "files": len(result.files)}}
    files = [(result.path.name, "application/zip", result.path.read_bytes())] if attached else []
    step.mailer.notice(Notice.STAFF_EXPORT, case, "s", context, inbound_id=step.inbound.id,
                       only_to=step.parsed.from_address, attachments=files)
