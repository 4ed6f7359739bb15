"""Evidence bundles end to end, over real SMTP: a delivery case (intake, a merchant answer
with a tracking number and a PDF, a customer reply, reminders, escalation, #close), then
`cases export`: the bag validates with the Library of Congress `bagit`, the raw messages
are byte for byte what was received, the hash chain holds and a changed byte is named,
the PDF opens and names every message; `#export` by mail returns the bundle."""

from __future__ import annotations

import email
import io
import json
import zipfile
from datetime import timedelta
from email.policy import compat32
from pathlib import Path

import bagit
import pytest
from pypdf import PdfReader
from reportlab.pdfgen import canvas

from gateway import addresses, reports
from gateway.cli import main
from gateway.clock import BusinessCalendar
from tests.harness import CUSTOMER, DOMAIN, KEYS, MERCHANT, STAFF, build_mail, write_config

CAL = BusinessCalendar("Europe/Paris", "FR")
TRACKING = "6A12345678901"


def _invoice_pdf() -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out, invariant=1)  # the same bytes every time
    page.drawString(72, 750, "Facture F2026-118 - Shop One")
    page.drawString(72, 730, f"Expedition Colissimo, numero de suivi {TRACKING}")
    page.save()
    return out.getvalue()


def _address(reference: str, party: str) -> str:
    return addresses.case_address(reference.lower(), party, domain=DOMAIN, keys=KEYS)


def _show(gateway, reference: str, **kwargs) -> dict:
    with gateway.runtime.database.unit_of_work() as db:
        return reports.show_case(db, reference, **kwargs)


def _cli(gateway, tmp_path: Path, *args: str) -> int:
    config = write_config(tmp_path / "cli.toml", gateway.settings)
    return main(["--config", str(config), *args], clock=gateway.clock)


def _send(gateway, raw: bytes, to: str, sender: str) -> bytes:
    gateway.send(raw, to=to, sender=sender)
    gateway.settle()
    return raw


def _unpack(path: Path, into: Path) -> Path:
    with zipfile.ZipFile(path) as archive:
        archive.extractall(into)
    (root,) = list(into.iterdir())
    return root


def _rewrite(source: Path, target: Path, change) -> None:
    """A copy of the ZIP with one member's bytes changed by `change(name, data)`."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, change(info.filename, old.read(info)))


def _case_lifecycle(gateway, sink, clock, tmp_path, capsys) -> tuple[str, list[bytes]]:
    """The case of this module: every raw message sent to the gateway, in order."""
    clock.set(clock.now())
    sent = [_send(gateway, build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001 never arrived",
                                      body="Hello, my parcel TX-1001 never arrived."),
                  f"delivery@{DOMAIN}", CUSTOMER)]
    with gateway.runtime.database.unit_of_work() as db:
        reference = reports.list_cases(db)[0]["reference"]
    clock.advance(timedelta(hours=1))
    sent.append(_send(gateway, build_mail(
        sender=MERCHANT, to=_address(reference, "m"), subject="Re: your parcel",
        body=f"Hello, the parcel left with Colissimo, tracking number {TRACKING}. It should arrive within 2 days.\n"
             "Our invoice is attached.", attachments=[("facture-F2026-118.pdf", "application/pdf", _invoice_pdf())]),
        _address(reference, "m"), MERCHANT))
    clock.advance(timedelta(hours=2))
    sent.append(_send(gateway, build_mail(sender=CUSTOMER, to=_address(reference, "c"), subject="Re: your parcel",
                                          body="The tracking page shows nothing. I still have no parcel."),
                      _address(reference, "c"), CUSTOMER))
    waiting = clock.now()
    for days in (2, 5, 7):  # two merchant reminders, then escalation to staff
        clock.set(CAL.add_business_days(waiting, days))
        assert _cli(gateway, tmp_path, "timers", "run") == 0
        gateway.settle()
    capsys.readouterr()
    clock.advance(timedelta(hours=1))
    sent.append(_send(gateway, build_mail(sender=STAFF[0], to=_address(reference, "s"), subject="Re: case",
                                          body="#close Merchant reshipped the order; customer agreed."),
                      _address(reference, "s"), STAFF[0]))
    assert _show(gateway, reference)["state"] == "closed"
    return reference, sent


def test_a_case_exported_after_its_whole_life(gateway, sink, clock, tmp_path, capsys):
    reference, sent = _case_lifecycle(gateway, sink, clock, tmp_path, capsys)

    # the reminders and the escalation notice asked the merchant for what was missing
    to_merchant = [r.text() for r in sink.to(MERCHANT)]
    reminders = [t for t in to_merchant if t.startswith("Reminder")]
    escalation = [t for t in to_merchant if "now handled by our staff" in t]
    assert len(reminders) == 2 and escalation
    for text in reminders + escalation:
        assert "proof of delivery to the customer's address" in text
        assert f"Already received: tracking number {TRACKING} (La Poste / Colissimo)" in text
        assert "the tracking number\n" not in text  # found already: not asked for

    # cases show lists the evidence, each with the message it came from
    shown = _show(gateway, reference, settings=gateway.settings, evidence=True)
    tracking = [e for e in shown["evidence"] if e["kind"] == "tracking_number"]
    assert tracking[0]["value"] == TRACKING and tracking[0]["carrier"] == "La Poste / Colissimo"
    assert tracking[0]["party"] == "m" and shown["missing_evidence"] == ["proof_of_delivery"]
    assert any(e["kind"] == "order_record" and e["source"] == "facture-F2026-118.pdf" for e in shown["evidence"])

    assert _cli(gateway, tmp_path, "cases", "show", reference) == 0
    out = capsys.readouterr().out
    assert f"tracking number: {TRACKING} (La Poste / Colissimo)  [merchant, message #" in out
    assert "Still missing for a not delivered dispute: proof of delivery" in out

    clock.advance(timedelta(minutes=30))
    bundle = tmp_path / "bundle.zip"
    assert _cli(gateway, tmp_path, "cases", "export", reference, "--out", str(bundle)) == 0
    assert str(bundle) in capsys.readouterr().out
    root = _unpack(bundle, tmp_path / "unpacked")
    bagit.Bag(str(root)).validate()  # the Library of Congress validator: manifests, tag manifest, Oxum
    data = root / "data"

    # every message as received, byte for byte
    received = {p.read_bytes() for p in (data / "messages").glob("*.eml")}
    assert all(raw in received for raw in sent) and len(received) == len(sent)
    case = json.loads((data / "case.json").read_text())
    merchant_answer = next(m for m in case["messages"] if m["role"] == "merchant")
    assert merchant_answer["mail_from"] == MERCHANT and merchant_answer["rcpt_to"] == [_address(reference, "m")]
    assert merchant_answer["sender_check"]["verdict"] == "accepted"
    assert merchant_answer["sender_check"]["envelope_sender"] == MERCHANT  # as the sender check recorded it
    receipt = json.loads((data / merchant_answer["receipt_file"]).read_text())
    assert receipt["sha256"] == merchant_answer["sha256"] and receipt["source"] == "smtp"
    assert (data / merchant_answer["attachments"][0]["file"]).read_bytes() == _invoice_pdf()

    # the delivery ledger holds the smarthost's own answer for every message sent
    ledger = case["deliveries"]
    assert ledger and all(row["status"] == "sent" and row["smtp_answer"] == "250 OK queued" for row in ledger)
    assert {row["kind"] for row in ledger if row["role"] == "merchant"} >= {
        "merchant_new_case", "relay", "merchant_reminder", "escalation_merchant", "case_closed"}
    assert (data / "delivery-ledger.csv").read_text().count("250 OK queued") == len(ledger)
    assert len(list((data / "outgoing").glob("*.eml"))) == len(ledger)

    # the summary, in English (and in the staff locale, English here)
    summary = (data / "summary.en.txt").read_text()
    for words in (reference, "Carol Client <carol@customer.test>", "Shop One", "TX-1001", "EUR 49.90",
                  "Visa 13.1", f"Tracking number: {TRACKING} (La Poste / Colissimo)",
                  "proof of delivery to the customer's address", "Escalated to staff:",
                  "Closed by staff after an agreement", "Merchant reshipped the order"):
        assert words in summary, words

    # the PDF opens and names every message
    pdfs = sorted(data.glob("transcript*.pdf"))
    text = " ".join(" ".join(page.extract_text().split()) for path in pdfs for page in PdfReader(path).pages)
    for message in case["messages"]:
        assert f"#{message['seq']} · " in text and f"from the {message['role']}" in text
    for label in ("case sent to the merchant, with its obligations", "reminder to the merchant",
                  "escalation notice to the merchant, with its obligations", "closing notice"):
        assert label in text, label
    assert all(len(PdfReader(p).pages) <= 19 and p.stat().st_size <= 2_000_000 for p in pdfs)
    html = (data / "transcript.html").read_text()
    assert all(f"#{m['seq']} · " in html for m in case["messages"]) and TRACKING in html

    # the hash chain holds: verify-export says so, and names a changed byte
    assert _cli(gateway, tmp_path, "cases", "verify-export", str(bundle)) == 0
    out = capsys.readouterr().out
    assert "the bundle is intact" in out and f"{case['chain']['events']} events hold" in out
    changed = tmp_path / "changed.zip"
    target = f"{root.name}/data/{merchant_answer['file']}"
    _rewrite(bundle, changed, lambda name, raw: raw.replace(TRACKING.encode(), b"6A12345678902") if name == target
             else raw)
    assert _cli(gateway, tmp_path, "cases", "verify-export", str(changed)) == 1
    out = capsys.readouterr().out
    assert f"data/{merchant_answer['file']}: changed since the export" in out
    assert "not the message received" in out

    edited = tmp_path / "edited.zip"

    def edit_history(name: str, raw: bytes) -> bytes:
        if not name.endswith("/data/case.json"):
            return raw
        document = json.loads(raw)
        document["events"][3]["detail"]["forged"] = True
        return json.dumps(document).encode()

    _rewrite(bundle, edited, edit_history)
    assert _cli(gateway, tmp_path, "cases", "verify-export", str(edited)) == 1
    out = capsys.readouterr().out
    assert "event #4" in out and "the event was changed" in out and "data/case.json: changed" in out

    # the export is an event on the case
    assert any(e["kind"] == "case_exported" and e["detail"]["sha256"] for e in _show(gateway, reference)["events"])

    # --redact: for outside the provider, no address and no raw message, still a valid bag
    redacted = tmp_path / "redacted.zip"
    assert _cli(gateway, tmp_path, "cases", "export", reference, "--out", str(redacted), "--redact") == 0
    root = _unpack(redacted, tmp_path / "redacted")
    bagit.Bag(str(root)).validate()
    files = [p for p in root.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix == ".eml"]
    for path in files:
        if path.suffix in (".txt", ".json", ".csv", ".html"):
            text = path.read_text()
            assert not [a for a in (CUSTOMER, MERCHANT, *STAFF, f"case+{reference.lower()}") if a in text], path
    pdf_text = " ".join(page.extract_text() for p in root.glob("data/transcript*.pdf") for page in PdfReader(p).pages)
    assert CUSTOMER not in pdf_text and "[customer's address]" in pdf_text and "Carol Client" in pdf_text
    assert json.loads((root / "data" / "case.json").read_text())["messages"][1]["sha256"] == merchant_answer["sha256"]
    assert _cli(gateway, tmp_path, "cases", "verify-export", str(redacted)) == 0
    capsys.readouterr()


def test_staff_export_by_mail_returns_the_bundle(gateway, sink, clock, tmp_path, capsys):
    reference, _ = _case_lifecycle(gateway, sink, clock, tmp_path, capsys)
    before, everything_before = len(sink.to(STAFF[1])), len(sink.received)
    clock.advance(timedelta(hours=1))
    _send(gateway, build_mail(sender=STAFF[1], to=_address(reference, "s"), subject="Re: case", body="#export"),
          _address(reference, "s"), STAFF[1])
    answer = sink.to(STAFF[1])[before]
    assert answer.text().startswith(f"Evidence bundle of case {reference}")
    message = email.message_from_bytes(answer.raw, policy=compat32)
    (zipped,) = [p for p in message.walk() if p.get_content_type() == "application/zip"]
    bundle = tmp_path / zipped.get_filename()
    bundle.write_bytes(zipped.get_payload(decode=True))
    bagit.Bag(str(_unpack(bundle, tmp_path / "by-mail"))).validate()
    assert [r.to for r in sink.received[everything_before:]] == [STAFF[1]]  # only the one who asked; no relay
    exported = [e for e in _show(gateway, reference)["events"] if e["kind"] == "case_exported"]
    assert exported[-1]["detail"]["by"] == f"staff {STAFF[1]}" and exported[-1]["party"] == "s"
    kept = Path(gateway.settings.export.directory) / zipped.get_filename()
    assert kept.read_bytes() == bundle.read_bytes()  # kept where an administrator finds it
    assert _cli(gateway, tmp_path, "cases", "verify-export", str(bundle)) == 0
    assert "the gateway's database holds the same" in capsys.readouterr().out


@pytest.fixture
def gateway(backend, make_gateway, tmp_path):
    return make_gateway(backend, export={"directory": str(tmp_path / "exports")})


def _small_case(gateway) -> str:
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001 never arrived",
                            body="Hello, my parcel TX-1001 never arrived."), to=f"delivery@{DOMAIN}")
    gateway.settle()
    with gateway.runtime.database.unit_of_work() as db:
        return reports.list_cases(db)[0]["reference"]


def test_a_bundle_too_large_for_mail_is_left_where_an_administrator_finds_it(make_gateway, sqlite_backend, sink,
                                                                            tmp_path):
    gateway = make_gateway(sqlite_backend, export={"directory": str(tmp_path / "exports"),
                                                   "max_attachment_bytes": 2048})
    reference = _small_case(gateway)
    _send(gateway, build_mail(sender=STAFF[0], to=_address(reference, "s"), subject="Re", body="#export"),
          _address(reference, "s"), STAFF[0])
    answer = sink.to(STAFF[0])[-1]
    (kept,) = (tmp_path / "exports").glob("*.zip")
    assert str(kept) in answer.text() and "more than the 2048 bytes" in answer.text()
    assert "application/zip" not in answer.raw.decode()
    assert _show(gateway, reference)["state"] == "awaiting_merchant"  # nothing else changed


def test_an_export_that_cannot_be_written_is_answered_and_changes_nothing(make_gateway, sqlite_backend, sink,
                                                                         tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the export folder should be")
    gateway = make_gateway(sqlite_backend, export={"directory": str(blocked)})
    reference = _small_case(gateway)
    _send(gateway, build_mail(sender=STAFF[0], to=_address(reference, "s"), subject="Re", body="#export"),
          _address(reference, "s"), STAFF[0])
    answer = sink.to(STAFF[0])[-1].text()
    assert answer.startswith(f"Case {reference}: the evidence bundle could not be written") and str(blocked) in answer
    assert not [e for e in _show(gateway, reference)["events"] if e["kind"] == "case_exported"]


def test_the_summary_is_also_in_the_staff_locale(make_gateway, sqlite_backend, sink, tmp_path, capsys):
    gateway = make_gateway(sqlite_backend, gateway={"default_locale": "fr"}, export={"directory": str(tmp_path / "x")})
    reference = _small_case(gateway)
    bundle = tmp_path / "fr.zip"
    assert _cli(gateway, tmp_path, "cases", "export", reference, "--out", str(bundle)) == 0
    data = _unpack(bundle, tmp_path / "fr") / "data"
    english, french = (data / "summary.en.txt").read_text(), (data / "summary.fr.txt").read_text()
    assert f"DISPUTE CASE {reference}: EVIDENCE SUMMARY" in english
    assert f"DOSSIER DE LITIGE {reference} : SYNTHÈSE DES PREUVES" in french
    for words in ("Non livré", "MANQUE ENCORE POUR CE TYPE DE LITIGE", "- le transporteur", "- le numéro de suivi",
                  "- la preuve de livraison à l'adresse du client", "aucune reconnue"):
        assert words in french, words
    assert "- proof of delivery to the customer's address" in english
