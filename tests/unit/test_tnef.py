"""winmail.dat unpacked into ordinary parts (real TNEF bytes from tests/tnef_writer.py)."""

from __future__ import annotations

from email.message import Message

from gateway.mail.tnef import unpack
from tests.tnef_writer import winmail


def _container(data: bytes) -> Message:
    part = Message()
    part["Content-Type"] = "application/ms-tnef"
    part.set_payload(data)
    from email.encoders import encode_base64

    encode_base64(part)
    return part


def test_files_become_attachments_and_the_body_only_when_wanted():
    data = winmail(sender="s@shop.test", subject="x", body="Refund sent",
                   files=[("label.pdf", b"%PDF-1.4"), ("r\u00e9sum\u00e9.txt", b"hello")])
    unpacked = unpack(_container(data), want_body=True)
    assert unpacked.files == 2
    body, pdf, text = unpacked.parts
    assert body.get_content_type() == "text/plain" and body.get_payload(decode=True) == b"Refund sent"
    assert pdf.get_content_type() == "application/pdf" and pdf.get_filename() == "label.pdf"
    assert pdf.get_payload(decode=True) == b"%PDF-1.4"
    assert text.get_filename() == "r\u00e9sum\u00e9.txt"
    assert len(unpack(_container(data), want_body=False).parts) == 2


def test_an_unreadable_container_is_none():
    assert unpack(_container(b"not tnef at all"), want_body=True) is None
    assert unpack(_container(winmail(sender="a@b", subject="x", body="y", files=[])[:9]), want_body=True) is None
