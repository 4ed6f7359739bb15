"""from_bytes and to_bytes read and write a message exactly as the email package does
(the relay of any message, large or hostile, is the same bytes), without its per-size copies."""

from __future__ import annotations

import email
import os
from email.message import EmailMessage
from email.policy import SMTP, compat32
from pathlib import Path

import pytest

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
