"""What counts as the same message (gateway.mail.fingerprint)."""

from __future__ import annotations

import pytest

from gateway.mail.fingerprint import content_below_trace, fingerprint

MESSAGE = (b"From: carol@customer.test\r\nTo: delivery@disputes.test\r\nSubject: TX-1001\r\n"
           b"Message-ID: <m1@customer.test>\r\n\r\nMy parcel never came.\r\n")
RCPT = ["delivery@disputes.test"]


@pytest.mark.parametrize("again", [
    b"Received: from mx2.customer.test by mx.disputes.test; Thu, 26 Nov 2026 10:00:05 +0100\r\n" + MESSAGE,
    b"Return-Path: <carol@customer.test>\r\nDelivered-To: delivery@disputes.test\r\n"
    b"Received: from a\r\n\tby b with ESMTP; Thu, 26 Nov 2026 10:00:05 +0100\r\n"
    b"Authentication-Results: mx.disputes.test; spf=pass\r\n" + MESSAGE,
    MESSAGE.replace(b"\r\n", b"\n"),  # an MTA that writes bare LF
])
def test_a_second_delivery_with_new_trace_headers_is_the_same_message(again):
    assert fingerprint(again, RCPT) == fingerprint(MESSAGE, RCPT)


def test_a_reused_message_id_with_other_content_is_another_message():
    other = MESSAGE.replace(b"My parcel never came.", b"It came broken.")
    assert fingerprint(other, RCPT) != fingerprint(MESSAGE, RCPT)


def test_without_a_message_id_the_content_still_identifies_the_message():
    bare = MESSAGE.replace(b"Message-ID: <m1@customer.test>\r\n", b"")
    assert fingerprint(b"Received: from x by y; now\r\n" + bare, RCPT) == fingerprint(bare, RCPT)
    assert fingerprint(bare, RCPT) != fingerprint(bare.replace(b"never", b"still not"), RCPT)


def test_other_recipients_make_another_delivery():
    assert fingerprint(MESSAGE, RCPT) != fingerprint(MESSAGE, ["payment@disputes.test"])
    assert fingerprint(MESSAGE, ["A@x.test", "b@x.test"]) == fingerprint(MESSAGE, ["b@x.test", "a@X.test"])


def test_only_the_leading_trace_headers_are_skipped():
    inner = b"From: carol@customer.test\r\nReceived: from inside\r\n\r\nbody\r\n"
    assert content_below_trace(b"Received: outside\r\n" + inner) == inner.replace(b"\r\n", b"\n")
    assert content_below_trace(b"Received: only a trace header\r\n") == b""
