"""Relayed messages on the wire: nothing of the author's routing survives, the body does."""

from __future__ import annotations

import email
import re
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP, compat32, default

import pytest

from gateway.mail.compose import (
    LOOP_HEADER,
    MAX_REFERENCES,
    Envelope,
    compose_relay,
    loop_header_valid,
    loop_token,
    new_message_id,
    thread_references,
)

KEY = "test-secret-key-number-one-0001"
OTHER_KEY = "older-secret-key-number-two-02"
AUTHOR = "carol.private@customer.test"
AUTHOR_DOMAIN_HOST = "mail-wr1-f41.customer.test"
RELAY_FROM = "case+abcd2345-c-2q3fn2ozjdzpobvx@disputes.test"
MERCHANT = "support@shop.test"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"

# Headers of the author's message that carry their address, their servers or their
# identity; not one of them may reach the other party.
PRIVATE_HEADERS = {
    "From": f"Carol Private <{AUTHOR}>",
    "Sender": f"<{AUTHOR}>",
    "Reply-To": f"<{AUTHOR}>",
    "Return-Path": f"<{AUTHOR}>",
    "X-Original-To": f"case+abcd2345-m-aaaaaaaaaaaaaaaa@disputes.test, {AUTHOR}",
    "Delivered-To": AUTHOR,
    "Received": f"from {AUTHOR_DOMAIN_HOST} ([192.0.2.77]) by mx.disputes.test with ESMTPS id 4X1; "
                "Tue, 17 Sep 2024 20:00:00 +0100",
    "DKIM-Signature": "v=1; a=rsa-sha256; c=relaxed/relaxed; d=customer.test; s=20230601; "
                      "h=to:subject:message-id:date:from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; "
                      "b=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZQ==",
    "ARC-Seal": "i=1; a=rsa-sha256; d=customer.test; s=arc; cv=none; b=c2VhbA==",
    "Authentication-Results": f"mx.disputes.test; dkim=pass header.i=@customer.test; smtp.mailfrom={AUTHOR}",
    "X-Originating-IP": "[192.0.2.77]",
    "Message-ID": "<CAC9z8y7private0001@mail.customer.test>",
    "In-Reply-To": "<abcd2345.0123456789abcdef0123@disputes.test>",
    "References": "<abcd2345.0123456789abcdef0123@disputes.test>",
    "To": "case+abcd2345-m-aaaaaaaaaaaaaaaa@disputes.test",
    "Cc": "Carol Other <carol.other@customer.test>",
    "Subject": "Re: [Case ABCD2345] my parcel",
    "Date": "Tue, 17 Sep 2024 20:00:00 +0100",
    "User-Agent": "Mozilla Thunderbird",
    "Disposition-Notification-To": AUTHOR,
}
LEAKS = [AUTHOR, AUTHOR_DOMAIN_HOST, "192.0.2.77", "carol.other", "CAC9z8y7private0001", "Thunderbird",
         "Carol Private", "dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZQ"]


def _envelope(**overrides) -> Envelope:
    values = dict(
        from_name="Carol (customer) via Disputes",
        from_address=RELAY_FROM,
        to_address=MERCHANT,
        to_name="Shop Support",
        subject="Re: [Case ABCD2345] Parcel never arrived",
        message_id="<abcd2345.1@disputes.test>",
        date=datetime(2024, 9, 17, 19, 0, 5, tzinfo=timezone.utc),
        in_reply_to="<abcd2345.root@disputes.test>",
        references=("<abcd2345.root@disputes.test>", "<abcd2345.2@disputes.test>"),
    )
    values.update(overrides)
    return Envelope(**values)


def _original(kind: str) -> bytes:
    message = EmailMessage(policy=SMTP)
    for name, value in PRIVATE_HEADERS.items():
        message[name] = value
    message["Received"] = "from localhost by mail-wr1-f41.customer.test; Tue, 17 Sep 2024 20:00:00 +0100"
    if kind == "plain":
        message.set_content("Hello,\n\nThe parcel never came.\n\nCarol\n")
    elif kind == "alternative":
        message.set_content("Hello,\n\nThe parcel never came.\n")
        message.add_alternative("<p>Hello,</p><p>The parcel <b>never</b> came.</p>", subtype="html")
    elif kind == "attachment":
        message.set_content("Receipt attached, caf\u00e9 included.\n")
        message.add_alternative("<p>Receipt attached, caf\u00e9 included.</p>", subtype="html")
        message.add_attachment(PDF, maintype="application", subtype="pdf", filename="receipt.pdf")
    return message.as_bytes()


def _read(raw: bytes):
    return email.message_from_bytes(raw, policy=default)


def _body_parts(message):
    return [(part.get_content_type(), part.get_filename(), part.get_payload(decode=True))
            for part in message.walk() if not part.is_multipart()]


KINDS = ["plain", "alternative", "attachment"]


@pytest.mark.parametrize("kind", KINDS)
def test_no_routing_header_of_the_original_survives(kind):
    out = compose_relay(_original(kind), _envelope(), key=KEY)
    top = _read(out)
    for name in ("Sender", "Reply-To", "Return-Path", "X-Original-To", "Delivered-To", "Received",
                 "DKIM-Signature", "ARC-Seal", "Authentication-Results", "X-Originating-IP", "Cc",
                 "User-Agent", "Disposition-Notification-To"):
        assert top.get_all(name) is None, name
    for leak in LEAKS:
        assert leak.encode() not in out, leak


@pytest.mark.parametrize("kind", KINDS)
def test_routing_headers_are_written_anew(kind):
    top = _read(compose_relay(_original(kind), _envelope(), key=KEY))
    assert top["From"].addresses[0].addr_spec == RELAY_FROM
    assert top["From"].addresses[0].display_name == "Carol (customer) via Disputes"
    assert top["To"].addresses[0].addr_spec == MERCHANT
    assert top["Subject"] == "Re: [Case ABCD2345] Parcel never arrived"
    assert top["Message-ID"] == "<abcd2345.1@disputes.test>"
    assert top["In-Reply-To"] == "<abcd2345.root@disputes.test>"
    assert top["References"].split() == ["<abcd2345.root@disputes.test>", "<abcd2345.2@disputes.test>"]
    assert top["Date"].datetime == datetime(2024, 9, 17, 19, 0, 5, tzinfo=timezone.utc)
    assert top["MIME-Version"] == "1.0"
    assert top["X-Auto-Response-Suppress"] == "All"
    assert "Auto-Submitted" not in top  # relayed human mail is not automatic
    for name in ("From", "To", "Subject", "Message-ID", "Date", "In-Reply-To", "References", LOOP_HEADER):
        assert len(top.get_all(name)) == 1, name


def test_optional_routing_headers():
    top = _read(compose_relay(_original("plain"), _envelope(in_reply_to=None, references=(),
                                                              auto_submitted="auto-generated"), key=KEY))
    assert "In-Reply-To" not in top and "References" not in top
    assert top["Auto-Submitted"] == "auto-generated"


@pytest.mark.parametrize("kind", KINDS)
def test_body_and_attachments_are_preserved(kind):
    original = _original(kind)
    out = compose_relay(original, _envelope(), key=KEY)
    assert _body_parts(_read(out)) == _body_parts(_read(original))
    assert _read(out).get_content_type() == _read(original).get_content_type()


def test_attachment_bytes_are_identical():
    parts = _body_parts(_read(compose_relay(_original("attachment"), _envelope(), key=KEY)))
    assert ("application/pdf", "receipt.pdf", PDF) in parts


def test_mime_version_is_added_to_a_non_mime_message():
    out = compose_relay(b"From: a@b.test\nSubject: s\n\nJust text\n", _envelope(), key=KEY)
    top = _read(out)
    assert top["MIME-Version"] == "1.0"
    assert top.get_content().strip() == "Just text"


def test_transform_changes_the_body_before_writing():
    def transform(message):
        message.set_payload("changed body\n")

    out = compose_relay(_original("plain"), _envelope(), key=KEY, transform=transform)
    assert b"changed body" in out and b"The parcel never came" not in out


# ---------------------------------------------------------------- wire format

WIRE_SAMPLES = [
    pytest.param(_original("plain"), id="plain"),
    pytest.param(_original("attachment"), id="attachment"),
    pytest.param(b"From: a@b.test\nSubject: s\nContent-Type: text/plain\n\nline one\nline two\n", id="bare-lf"),
    pytest.param("From: a@b.test\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                 "caf\u00e9\nol\u00e9\n".encode(), id="8bit-bare-lf"),
    pytest.param(b"From: a@b.test\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\n"
                 b"hi\nthere\n--zz\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
                 b"Content-Disposition: attachment; filename=a.bin\n\nAAECAwQ=\n--zz--\n", id="multipart-bare-lf"),
]


def _bad_line_endings(raw: bytes) -> list[bytes]:
    return re.findall(rb"(?<!\r)\n|\r(?!\n)", raw)


@pytest.mark.parametrize("raw", WIRE_SAMPLES)
def test_output_uses_crlf_and_short_lines(raw):
    long_envelope = _envelope(subject="Re: [Case ABCD2345] " + "a long subject " * 30,
                              references=tuple(f"<abcd2345.{i:040d}@disputes.test>" for i in range(MAX_REFERENCES)))
    out = compose_relay(raw, long_envelope, key=KEY)
    assert _bad_line_endings(out) == []
    assert max(len(line) for line in out.split(b"\r\n")) <= 998


@pytest.mark.parametrize("raw", [
    b"From: a@b.test\r\nContent-Type: text/html\r\n\r\n<p>" + b"x" * 3000 + b"</p>\r\n",
    "From: a@b.test\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".encode()
    + ("\u00e9" * 1500).encode() + b"\r\n",
], ids=["7bit-html", "8bit-text"])
def test_over_long_body_lines_are_re_encoded(raw):
    out = compose_relay(raw, _envelope(), key=KEY)
    assert max(len(line) for line in out.split(b"\r\n")) <= 998


# ---------------------------------------------------------------- loop header


@pytest.mark.parametrize("message_id", ["<a@b>", "<abcd2345.1@disputes.test>"])
def test_loop_header_validates_with_the_signing_key_only(message_id):
    out = compose_relay(_original("plain"), _envelope(message_id=message_id), key=KEY)
    value = email.message_from_bytes(out, policy=compat32)[LOOP_HEADER]
    assert value.startswith(message_id)
    assert loop_header_valid(value, [KEY])
    assert loop_header_valid(value, [OTHER_KEY, KEY])
    assert not loop_header_valid(value, [OTHER_KEY])


@pytest.mark.parametrize("domain", ["disputes.test", "disputes.example.org"])
def test_loop_header_of_a_real_message_id_validates(domain):
    message_id = new_message_id(domain, "abcd2345")
    out = compose_relay(_original("plain"), _envelope(message_id=message_id), key=KEY)
    value = email.message_from_bytes(out, policy=compat32)[LOOP_HEADER]
    assert loop_header_valid(value, [KEY])


@pytest.mark.parametrize("value, keys, valid", [
    (f"<a@b> {loop_token('<a@b>', KEY)}", [KEY], True),
    (f"  <a@b> {loop_token('<a@b>', KEY)}\r\n", [KEY], True),
    (f"<a@b> {loop_token('<a@b>', KEY)}", [OTHER_KEY], False),
    (f"<a@b> {loop_token('<a@b>', KEY)}", [], False),
    (f"<a@c> {loop_token('<a@b>', KEY)}", [KEY], False),
    (f"<a@b> {loop_token('<a@b>', KEY)[:-1]}", [KEY], False),
    (loop_token("<a@b>", KEY), [KEY], False),
    ("", [KEY], False),
    ("<a@b>", [KEY], False),
])
def test_loop_header_valid(value, keys, valid):
    assert loop_header_valid(value, keys) is valid


def test_new_message_ids_are_unique_and_name_no_address():
    ids = {new_message_id("disputes.test", "abcd2345") for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"<abcd2345\.[0-9a-f]{20}@disputes\.test>", i) for i in ids)
    assert re.fullmatch(r"<gw\.[0-9a-f]{20}@disputes\.test>", new_message_id("disputes.test"))


# ---------------------------------------------------------------- thread references

IDS = tuple(f"<{i}@disputes.test>" for i in range(25))


@pytest.mark.parametrize("refs, expected", [
    ((), ()),
    (IDS[:1], IDS[:1]),
    (IDS[:MAX_REFERENCES], IDS[:MAX_REFERENCES]),
    (IDS[:MAX_REFERENCES + 1], IDS[:1] + IDS[2:MAX_REFERENCES + 1]),
    (IDS, IDS[:1] + IDS[-(MAX_REFERENCES - 1):]),
])
def test_thread_references_keep_the_root_and_the_newest(refs, expected):
    assert thread_references(list(refs)) == expected


def test_thread_references_are_bounded():
    result = thread_references(IDS)
    assert len(result) == MAX_REFERENCES
    assert result[0] == IDS[0] and result[-1] == IDS[-1]


# Hostile and broken MIME found by fuzzing: a relay must always come out, valid on the wire.
BROKEN = [
    b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + b"--x\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n" * 200,
    b"Content-Type: text/plain; charset=\"utf-8\x00\"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n",
    b"Content-Type: text/html; charset=\xff\xfe\r\n\r\n<p>" + b"x" * 3000 + b"</p>\r\n",
    b"Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/html; "
    b"name*0*=utf-8''%E9%; charset=bogus\r\n\r\n<b>hi\r\n--b--\r\n",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: \xff\r\n\r\n" + b"y" * 2000,
    b"Content-Type: \xe9/\xe9\r\n\r\n" + b"y" * 2000,
    b"Content-Type: multipart/mixed; boundary=\"\xe9\xe9\"\r\n\r\n--\xe9\xe9\r\nContent-Type: text/plain\r\n\r\nhi\r\n--\xe9\xe9--\r\n",
    b"Content-Type: text/plain; charset=(utf-8)\r\n\r\n" + b"\xe9" * 1200 + b"\r\n",
]


@pytest.mark.parametrize("raw", BROKEN, ids=range(len(BROKEN)))
def test_broken_mime_still_relays(raw):
    out = compose_relay(b"From: a@b.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n" + raw, _envelope(), key=KEY)
    assert _bad_line_endings(out) == []
    assert max(len(line) for line in out.split(b"\r\n")) <= 998
    assert email.message_from_bytes(out, policy=compat32)["From"]
