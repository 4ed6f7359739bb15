"""from_bytes and to_bytes read and write a message exactly as the email package does
(the relay of any message, large or hostile, is the same bytes), without its per-size copies."""

from __future__ import annotations

import email
import os
from email.message import EmailMessage
from email.policy import SMTP, compat32
from pathlib import Path

import pytest

from gateway.mail import wire
from gateway.mail.wire import from_bytes, to_bytes

MAIL = Path(__file__).resolve().parent.parent / "mail"
SAMPLES = sorted(MAIL.rglob("*.eml"))
WIRE = compat32.clone(linesep="\r\n")


def _tree(message):
    """Everything the parser decides: headers, bodies, preamble and epilogue, defects."""
    payload = message.get_payload()
    return (message.items(), message.preamble, message.epilogue, [type(d).__name__ for d in message.defects],
            message.get_default_type(), [_tree(p) for p in payload] if isinstance(payload, list) else payload)


def _with_photos() -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"], message["To"], message["Subject"] = "carol@customer.test", "x@disputes.test", "Photos"
    message.set_content("The parcel, opened.\n")
    for n in range(3):
        message.add_attachment(os.urandom(200_000), maintype="image", subtype="jpeg", filename=f"photo{n}.jpg")
    message.add_attachment("line\r\nbare LF\nbare CR\rend" * 3000, filename="notes.txt")
    return message.as_bytes()


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_real_and_broken_mail_parses_and_writes_out_as_with_the_email_package(path):
    raw = path.read_bytes()
    assert _tree(from_bytes(raw)) == _tree(email.message_from_bytes(raw, policy=compat32))
    for policy in (WIRE, compat32):
        assert to_bytes(from_bytes(raw), policy) == email.message_from_bytes(raw, policy=compat32).as_bytes(policy=policy)


def test_a_message_larger_than_a_read_with_line_ends_split_across_reads_parses_the_same():
    raw = _with_photos()
    for cut in (8191, 8192, 8193, 3 * 8192 - 1):  # a CR LF pair split where one read ends
        spliced = raw[:cut] + b"\r\n" + raw[cut:]
        assert _tree(from_bytes(spliced)) == _tree(email.message_from_bytes(spliced, policy=compat32))
    assert to_bytes(from_bytes(raw), WIRE) == email.message_from_bytes(raw, policy=compat32).as_bytes(policy=WIRE)


def _photos_message(line_end: bytes, *, nested: bool = False, tail: bytes = b"") -> bytes:
    raw = _with_photos()
    if nested:  # the photos inside a forwarded message, itself an attachment
        outer = EmailMessage(policy=SMTP)
        outer["From"], outer["To"], outer["Subject"] = "carol@customer.test", "x@disputes.test", "Fwd: Photos"
        outer.set_content("See the forwarded mail.\n")
        outer.add_attachment(email.message_from_bytes(raw, policy=SMTP))
        raw = outer.as_bytes()
    return raw.replace(b"\r\n", b"\n").replace(b"\n", line_end) + tail


@pytest.mark.parametrize("line_end", [b"\r\n", b"\n", b"\r"], ids=["crlf", "lf", "cr"])
@pytest.mark.parametrize("nested", [False, True], ids=["flat", "forwarded"])
def test_long_base64_runs_set_aside_give_the_email_package_s_tree(line_end, nested):
    raw = _photos_message(line_end, nested=nested)
    assert len(raw) > 256 * 1024 and len(list(wire._RUN.finditer(raw))) >= 3  # the photos are set aside
    assert _tree(from_bytes(raw)) == _tree(email.message_from_bytes(raw, policy=compat32))
    assert to_bytes(from_bytes(raw), WIRE) == email.message_from_bytes(raw, policy=compat32).as_bytes(policy=WIRE)


def test_base64_runs_where_the_parser_meets_them_in_odd_places_give_the_same_tree():
    import base64

    run = base64.encodebytes(os.urandom(300_000))
    cases = [
        b"From: a@b.test\nSubject: one part\nContent-Transfer-Encoding: base64\n\n" + run,  # the body, to the end
        b"From: a@b.test\nSubject: no blank line\n" + run,  # headers end at a line that is not one
        b"From: a@b.test\nContent-Type: multipart/mixed; boundary=XX\n\n" + run + b"--XX\n\n" + run + b"--XX--\n" + run,
        b"From: a@b.test\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\n" + run + b"--XX",  # no part headers, no close
        b"From: a@b.test\n\n" + run.rstrip(b"\n"),  # no line end at the very end
        b"From: a@b.test\n\nbefore\n" + run + b"DGWIRE in the text\n" + run,
    ]
    for raw in cases:
        assert _tree(from_bytes(raw)) == _tree(email.message_from_bytes(raw, policy=compat32))
        assert to_bytes(from_bytes(raw), WIRE) == email.message_from_bytes(raw, policy=compat32).as_bytes(policy=WIRE)
