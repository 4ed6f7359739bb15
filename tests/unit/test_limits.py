"""Bounded work per message (gateway.mail.limits): hostile shapes are cut down before any
parser reads them, what is cut is said, and ordinary mail passes untouched."""

from __future__ import annotations

import email
from email.policy import compat32

import pytest

from gateway.mail.compose import Envelope, compose_relay
from gateway.mail.limits import Limits, bound
from gateway.mail.parse import parse
from gateway.mail.sanitize import UNSAFE_STYLE, sanitize_html
from gateway.mail.text import html_to_text
from datetime import datetime, timezone

HEAD = b"From: carol@customer.test\r\nTo: delivery@disputes.test\r\nSubject: TX-1001\r\nMIME-Version: 1.0\r\n"


def _nested(depth: int) -> bytes:
    parts = [HEAD]
    for level in range(depth):
        parts.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level))
    parts.append(b"Content-Type: text/plain\r\n\r\nthe deepest text\r\n")
    parts.extend(b"--b%d--\r\n" % level for level in reversed(range(depth)))
    return b"".join(parts)


def _parts(count: int) -> bytes:
    body = b"".join(b"--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % n for n in range(count)) + b"--p--\r\n"
    return HEAD + b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n' + body


def test_ordinary_mail_comes_back_as_the_same_bytes(eml):
    for name in ("cid_inline_image.eml", "hostile_html.eml", "postfix_dsn_full_message.eml", "too_many_attachments.eml"):
        raw = eml(name)
        bounded = bound(raw)
        assert bounded.raw is raw and not bounded.limited


def test_mime_nested_a_thousand_deep_is_cut_at_the_depth_limit_and_still_parses():
    raw = _nested(1000)
    with pytest.raises(RecursionError):
        email.message_from_bytes(raw, policy=compat32)  # what used to quarantine such a message
    bounded = bound(raw, Limits(max_depth=20))
    message = email.message_from_bytes(bounded.raw, policy=compat32)
    assert sum(1 for part in message.walk() if part.is_multipart()) == 20
    assert bounded.notes == ("MIME parts nested deeper than 20 levels were dropped",)
    parsed = parse(raw)
    assert parsed.limited == bounded.notes and parsed.from_address == "carol@customer.test"


def test_within_the_depth_limit_nothing_is_cut():
    raw = _nested(20)
    assert bound(raw, Limits(max_depth=20)).raw is raw
    assert "the deepest text" in parse(raw).text


def test_parts_past_the_limit_are_dropped_and_the_multipart_closed():
    bounded = bound(_parts(2_000), Limits(max_parts=500))
    message = email.message_from_bytes(bounded.raw, policy=compat32)
    assert len(message.get_payload()) == 500 and not message.defects
    assert bounded.notes == ("MIME parts past the first 500 were dropped",)


def test_attached_messages_nested_deeper_than_the_limit_are_dropped():
    raw = b"Subject: inner\r\n\r\nthe bottom\r\n"
    for _ in range(300):
        raw = b"Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n" + raw
    bounded = bound(HEAD + raw, Limits(max_depth=10))
    assert bounded.notes == ("messages attached deeper than 10 levels were dropped",)
    email.message_from_bytes(bounded.raw, policy=compat32).as_bytes()


def test_header_fields_past_the_limit_are_dropped_but_the_mime_fields_kept():
    fields = b"".join(b"X-H%d: v\r\n" % n for n in range(100_000))
    raw = HEAD + fields + b"Content-Type: text/plain; charset=utf-8\r\n\r\nMy parcel TX-1001 never came.\r\n"
    bounded = bound(raw, Limits(max_header_fields=1000))
    message = email.message_from_bytes(bounded.raw, policy=compat32)
    assert len(message.keys()) <= 1000 + 2 and message.get_content_charset() == "utf-8"
    assert "(" in bounded.notes[0] and "header fields past 1000" in bounded.notes[0]
    assert parse(raw).new_text == "My parcel TX-1001 never came."


def test_an_overlong_field_is_shortened_not_dropped():
    subject = b" ".join([b"=?utf-8?q?caf=C3=A9?="] * 95_000)
    raw = HEAD.replace(b"Subject: TX-1001", b"Subject: TX-1001 " + subject) + b"\r\nhello\r\n"
    parsed = parse(raw, Limits(max_header_field_bytes=4096))
    assert parsed.subject.startswith("TX-1001 cafécafé") and len(parsed.subject) < 4096  # RFC 2047: adjacent words join
    assert parsed.limited == ("a header field longer than 4096 bytes was shortened",)
    assert parsed.text.strip() == "hello"


def test_a_part_without_a_blank_line_after_its_headers_keeps_its_delimiters():
    raw = HEAD + (b'Content-Type: multipart/mixed; boundary="q"\r\n\r\n--q\r\nno headers, just text\r\n'
                  b"--q\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--q--\r\n")
    assert bound(raw, Limits(max_parts=1)).notes == ("MIME parts past the first 1 were dropped",)
    assert bound(raw).raw is raw


def test_a_relay_of_a_message_over_the_limits_composes():
    envelope = Envelope(from_name="Carol (customer) via Disputes", from_address="case+a-m-b@disputes.test",
                        to_address="support@shop.test", subject="[Case A] TX-1001", message_id="<x@disputes.test>",
                        date=datetime(2026, 1, 1, tzinfo=timezone.utc))
    out = compose_relay(_nested(1000), envelope, key="k" * 32)
    assert b"Message-ID: <x@disputes.test>" in out
    email.message_from_bytes(out, policy=compat32)


def test_html_of_megabytes_of_close_tags_becomes_text_through_a_real_parser():
    assert html_to_text("<p>Hello</p>" + "</" * 200_000 + "<blockquote>old</blockquote>").startswith("Hello")
    assert html_to_text("<p>A &amp; B</p><!-- " + "<!--" * 100_000) == "A & B"


def test_an_inline_style_of_a_hundred_thousand_letters_is_dropped_whole():
    result = sanitize_html('<p style="color:' + "a" * 137_000 + '">hello</p>')
    assert "hello" in result.html and "style" not in result.html and UNSAFE_STYLE in result.removed
