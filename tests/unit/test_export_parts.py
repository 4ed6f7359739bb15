"""The pure parts of an export: the hash chain, redaction, file names, the BagIt writer
(validated with the Library of Congress `bagit`), the PDF sizing, and verify's refusals."""

from __future__ import annotations

import copy
import zipfile
from datetime import datetime, timezone

import bagit
import pytest
from pypdf import PdfReader

from gateway.export import bag, chain, names, pdf, verify
from gateway.export.redact import HIDDEN, Redactor

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=timezone.utc)
EVENTS = [{"seq": n, "kind": kind, "at": f"2026-11-2{n}T10:00:00+00:00", "detail": {"n": n}}
          for n, kind in enumerate(["case_opened", "message_received", "relayed", "merchant_replied"], start=1)]


def test_chain_links_each_event_to_the_one_before():
    linked = chain.link("K3Q8", EVENTS)
    assert linked[0]["prev"] == chain.genesis("K3Q8")
    assert all(linked[i]["prev"] == linked[i - 1]["hash"] for i in range(1, len(linked)))
    assert chain.verify("K3Q8", linked) == []
    assert chain.link("K3Q8", EVENTS) == linked  # the same history gives the same chain
    assert chain.head("K3Q8", chain.link("OTHER", EVENTS)) != chain.head("K3Q8", linked)  # bound to its case


@pytest.mark.parametrize("tamper, index, words", [
    (lambda e: e[1]["detail"].update(n=99), 1, "the event was changed"),
    (lambda e: e.pop(1), 1, "was removed, inserted or moved"),
    (lambda e: e.insert(1, e.pop(2)), 1, "was removed, inserted or moved"),
])
def test_chain_reports_where_the_history_was_changed(tamper, index, words):
    linked = copy.deepcopy(chain.link("K3Q8", EVENTS))
    tamper(linked)
    breaks = chain.verify("K3Q8", linked)
    assert breaks and breaks[0].index == index and words in breaks[0].problem


def test_redaction_hides_every_address_and_keeps_the_rest():
    redact = Redactor({"carol@customer.test": "[customer's address]", "support@shop.test": "[merchant's address]"})
    value = {"from": "Carol <Carol@Customer.test>", "list": ["support@shop.test wrote", "x@y.example"], "n": 3}
    assert redact(value) == {"from": "Carol <[customer's address]>", "list": ["[merchant's address] wrote", HIDDEN],
                             "n": 3}


@pytest.mark.parametrize("name, safe", [
    ("facture décembre.pdf", "facture_decembre.pdf"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\photo 1.JPG", "photo_1.JPG"),
    ("\r\n.hidden", "hidden"),
    ("", "file"),
    ("a" * 200 + ".pdf", "a" * 76 + ".pdf"),
])
def test_safe_names(name, safe):
    assert names.safe(name) == safe


def test_unique_names():
    taken: set[str] = set()
    assert [names.unique(n, taken) for n in ("a.pdf", "A.pdf", "a.pdf", "b")] == ["a.pdf", "A-2.pdf", "a-3.pdf", "b"]


def _bag(tmp_path, payload=None):
    path = tmp_path / "out" / "case.zip"
    bag.write(path, "case-K3Q8", payload or [("summary.en.txt", b"hello\n"), ("messages/001-customer.eml", b"raw")],
              [("External-Identifier", "K3Q8")], at=NOW)
    return path


def test_the_bag_is_valid_for_the_library_of_congress_validator(tmp_path):
    path = _bag(tmp_path)
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "x")
        assert {i.filename.split("/")[0] for i in archive.infolist()} == {"case-K3Q8"}
    found = bagit.Bag(str(tmp_path / "x" / "case-K3Q8"))
    found.validate()
    assert found.info["Payload-Oxum"] == "9.2" and found.info["External-Identifier"] == "K3Q8"
    assert list(tmp_path.glob("out/.export-*")) == []  # no temporary file left


def test_a_failed_write_leaves_no_file(tmp_path):
    def payload():
        yield "a.txt", b"x"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        bag.write(tmp_path / "case.zip", "case-K3Q8", payload(), [], at=NOW)
    assert list(tmp_path.iterdir()) == []


def test_verify_refuses_a_zip_that_leaves_its_folder(tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("case-X/bagit.txt", "BagIt-Version: 1.0\n")
        archive.writestr("case-X/../../outside.txt", "x")
    report = verify.verify(path)
    assert not report.ok and "outside the bag" in report.problems[0]
    assert not (tmp_path.parent / "outside.txt").exists()


def test_verify_names_a_file_added_after_the_export(tmp_path):
    path = _bag(tmp_path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("case-K3Q8/data/extra.txt", "added")
    report = verify.verify(path)
    assert "data/extra.txt: not in manifest-sha256.txt (added after the export)" in report.problems


def test_verify_of_something_else(tmp_path):
    path = tmp_path / "x.zip"
    path.write_bytes(b"not a zip")
    assert "not a readable ZIP file" in verify.verify(path).problems[0]


def test_pdf_parts_stay_within_the_limits():
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas
    import io

    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    for number in range(45):
        page.drawString(72, 720, f"page {number + 1}")
        page.showPage()
    page.save()
    parts, total = pdf.split(out.getvalue(), max_pages=19, max_bytes=2_000_000)
    assert total == 45 and [name for name, _ in parts] == ["transcript1.pdf", "transcript2.pdf", "transcript3.pdf"]
    assert [len(PdfReader(io.BytesIO(data)).pages) for _, data in parts] == [19, 19, 7]
    parts, _ = pdf.split(out.getvalue(), max_pages=100, max_bytes=len(out.getvalue()) // 3)
    assert len(parts) > 1 and all(len(data) <= len(out.getvalue()) // 3 for _, data in parts)
    assert len(pdf.split(out.getvalue(), max_pages=100, max_bytes=10_000_000)[0]) == 1


def test_characters_the_font_cannot_show_are_counted(tmp_path):
    from pathlib import Path

    from reportlab import rl_config

    from gateway.settings import ExportSettings, GatewaySettings, Settings

    vera = Path(rl_config.__file__).resolve().parent / "fonts" / "Vera.ttf"
    settings = Settings(gateway=GatewaySettings(domain="d.test", secret_keys=("k" * 16,), staff_addresses=("s@d.test",)),
                        export=ExportSettings(pdf_font=vera))
    writer = pdf._Writer(pdf.fonts(settings))
    assert writer.clean("Livré à Zoë, Привет") == "Livré à Zoë, ??????" and writer.replaced == 6
