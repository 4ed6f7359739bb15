"""Export one case as an evidence bundle: the edge the CLI (`cases export`) and the
`#export` staff command call. It reads the case, builds every document, writes the bag
and records the export as an event on the case (with the bundle's SHA-256 and the head of
the hash chain, so a later copy of the bundle, or a later change to the history, can be
told from the original)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from gateway import addresses, store
from gateway.cases.machine import EventKind
from gateway.config import Settings
from gateway.export import bag, chain, document, pdf, record as case_record, render
from gateway.export.redact import Redactor, keep
from gateway.models import Case

log = logging.getLogger(__name__)

KIND_LABELS = {"tracking_number": "Tracking number", "carrier": "Carrier", "refund_reference": "Refund reference",
               "refund_date": "Refund date", "delivery_date": "Delivery date",
               "return_authorisation": "Return authorisation", "return_offer": "Return offered",
               "proof_of_delivery": "Proof of delivery", "photo": "Photo", "product_description": "Product description",
               "order_record": "Order confirmation or invoice"}
NEED_LABELS = {"carrier": "the carrier", "tracking_number": "the tracking number",
               "proof_of_delivery": "proof of delivery to the customer's address",
               "product_description": "the product description at the time of purchase", "photo": "photos",
               "return_offer": "the return offered to the customer", "refund_reference": "the refund reference",
               "refund_date": "the date of the refund", "order_record": "the order confirmation or invoice"}


@dataclass(frozen=True)
class Export:
    path: Path
    sha256: str
    size: int
    files: tuple[str, ...]  # paths inside the bag, data/ included
    chain_head: str
    events: int
    pages: int
    redacted: bool


def bag_name(case: Case, now: datetime) -> str:
    return f"case-{case.reference.upper()}-{now.strftime('%Y%m%dT%H%M%SZ')}"


def default_path(settings: Settings, case: Case, now: datetime, *, redacted: bool) -> Path:
    return settings.export.directory / f"{bag_name(case, now)}{'-redacted' if redacted else ''}.zip"


def redactor_for(record: case_record.CaseRecord, redacted: bool):
    if not redacted:
        return keep
    gateway = record.settings.gateway
    known = {record.case.customer_email: "[customer's address]"}
    if record.merchant is not None:
        known[record.merchant.support_email] = "[merchant's address]"
    known.update({address: "[staff address]" for address in gateway.staff_addresses})
    for party, role in (("c", "customer"), ("m", "merchant"), ("s", "staff")):
        known[addresses.case_address(record.case.reference, party, domain=gateway.domain,
                                     keys=gateway.secret_keys)] = f"[case address of the {role}]"
    return Redactor(known)


def linked_history(record: case_record.CaseRecord, *, redacted: bool) -> list[dict]:
    """The case's events as the chain of an export links them (redacted or not)."""
    return chain.link(record.reference, redactor_for(record, redacted)(document.event_records(record)))


def _view(record: case_record.CaseRecord, redact, linked: list[dict], redacted: bool) -> dict:
    evidence = [{**e, "party_role": {"c": "customer", "m": "merchant", "s": "staff"}.get(e["party"], e["party"])}
                for e in redact(document.evidence(record))]
    return {
        "o": redact(document.overview(record)), "d": redact(document.dates(record)), "evidence": evidence,
        "missing": record.missing, "missing_labels": [NEED_LABELS[m] for m in record.missing],
        "kind_labels": KIND_LABELS, "entries": redact(document.entries(record)), "ledger": redact(document.ledger(record)),
        "events": [{**e, "text": document.describe(e)} for e in linked], "redacted": redacted,
        "chain": {"rule": chain.RULE, "head": chain.head(record.reference, linked),
                  "genesis": chain.genesis(record.reference)},
    }


def _payload(record, redact, view: dict, transcript: pdf.Pdf, redacted: bool, summaries: dict[str, str],
             case_json: dict):
    for locale, text in summaries.items():
        yield f"summary.{locale}.txt", text.encode("utf-8")
    yield "transcript.html", render.transcript_html(view).encode("utf-8")
    yield from transcript.parts
    yield "delivery-ledger.csv", document.ledger_csv(view["ledger"])
    yield "case.json", json.dumps(case_json, indent=2, ensure_ascii=False).encode("utf-8")
    for item in record.inbound:
        if not redacted:
            yield item.eml, item.inbound.raw  # exactly as received
        yield item.eml.replace(".eml", ".receipt.json"), json.dumps(redact(item.receipt), indent=2,
                                                                   ensure_ascii=False).encode("utf-8")
        for attachment in item.attachments:
            yield attachment.path, attachment.data
    if not redacted:
        for item in record.outgoing:
            yield item.eml, item.row.raw


def export_case(db: Session, case: Case, *, settings: Settings, now: datetime, redacted: bool = False,
                out: Path | None = None, by: str = "cli", party: str | None = None) -> Export:
    """Write the bundle of `case` (to `out`, else into `[export] directory`) and record it,
    all in the caller's unit of work."""
    record = case_record.read(db, case, settings=settings, now=now)
    result = write_bundle(record, redacted=redacted, out=out)
    record_export(db, case, result, now=now, by=by, party=party)
    return result


def record_export(db: Session, case: Case, result: Export, *, now: datetime, by: str, party: str | None) -> None:
    """The export as an event on the case: who, which file, its SHA-256 and chain head."""
    store.add_event(db, case, EventKind.CASE_EXPORTED.value, at=now, party=party, by=by, file=result.path.name, sha256=result.sha256,
                    bytes=result.size, chain_head=result.chain_head, events=result.events, redacted=result.redacted,
                    pages=result.pages)
    log.info("case %s exported to %s (%s bytes, %s events)", case.reference.upper(), result.path, result.size,
             result.events)


def write_bundle(record: case_record.CaseRecord, *, redacted: bool = False, out: Path | None = None) -> Export:
    """Build every document of `record` and write the bag; touches no database."""
    case, settings, now = record.case, record.settings, record.exported_at
    redact = redactor_for(record, redacted)
    linked = linked_history(record, redacted=redacted)
    head = chain.head(record.reference, linked)
    view = _view(record, redact, linked, redacted)
    transcript = pdf.render(view, settings)
    view["contents"] = {"received": len(record.inbound), "sent": len(record.outgoing),
                        "attachments": sum(len(i.attachments) for i in record.inbound),
                        "pdf": [name for name, _ in transcript.parts], "pages": transcript.pages,
                        "events": len(linked), "head": head}
    locales = ["en"] + ([settings.gateway.default_locale] if settings.gateway.default_locale != "en" else [])
    summaries = {locale: render.summary_text(view, locale) for locale in locales}
    case_json = document.case_json(record, linked=linked, head=head, redact=redact, redacted=redacted,
                                   chain_rule=chain.RULE, genesis=chain.genesis(record.reference))
    case_json["transcript"] = {"files": view["contents"]["pdf"], "pages": transcript.pages, "font": transcript.font,
                               "characters_replaced": transcript.replaced}
    payload = list(_payload(record, redact, view, transcript, redacted, summaries, case_json))
    destination = out or default_path(settings, case, now, redacted=redacted)
    name = bag_name(case, now)
    info = [("Source-Organization", settings.gateway.display_name), ("External-Identifier", record.reference),
            ("External-Description", f"Evidence bundle of dispute case {record.reference} (transaction "
                                     f"{case.transaction_reference}), {len(linked)} events"),
            ("Bag-Software-Agent", view["o"]["software"]), ("Case-Chain-Head", head),
            ("Case-Redacted", "yes" if redacted else "no")]
    digest = bag.write(destination, name, payload, info, at=now)
    size = destination.stat().st_size
    files = tuple(sorted(f"data/{path}" for path, _ in payload)) + (
        "bag-info.txt", "bagit.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt")
    return Export(destination, digest, size, files, head, len(linked), transcript.pages, redacted)
