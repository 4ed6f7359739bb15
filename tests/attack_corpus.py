"""The attack corpus for anonymity (issue 9, point 3) and content safety (point 4).

Each `Vector` is a message a party (or staff) could send to its case address, built as raw
bytes so that malformed headers stay malformed. `TUNED` are the vectors the relay transform
was built against; `HELD_OUT` were written afterwards from the same families and only run.
The README's table "Anonymity and content safety: attack -> answer" has one row per id;
tests/unit/test_attack_corpus.py checks both stay in step.

`reader_view` is the checker: everything a recipient (or its mail client) could read in a
relayed message, decoded the way a reader would, independently of the gateway's own
scrubber: every header of every part (RFC 2047 and RFC 2231 decoded), every leaf decoded
from its transfer encoding (binary leaves also read as Latin-1 and UTF-16), HTML also with
tags stripped and entities decoded, everything NFKC-folded, format characters removed,
percent escapes decoded, lower case.
"""

from __future__ import annotations

import base64
import email
import html as htmllib
import quopri
import re
import unicodedata
from dataclasses import dataclass
from email.header import decode_header
from email.message import Message
from email.policy import compat32
from email.utils import collapse_rfc2231_value
from urllib.parse import unquote

from gateway import addresses
from tests.harness import CUSTOMER, DOMAIN, KEYS, MERCHANT, STAFF
from tests.tnef_writer import winmail

REFERENCE = "k3q7ab2c"
OTHER_REFERENCE = "zz9x7d2e"
CUSTOMER_CASE = addresses.case_address(REFERENCE, "c", domain=DOMAIN, keys=KEYS)
MERCHANT_CASE = addresses.case_address(REFERENCE, "m", domain=DOMAIN, keys=KEYS)
STAFF_CASE = addresses.case_address(REFERENCE, "s", domain=DOMAIN, keys=KEYS)
OTHER_CASE = addresses.case_address(OTHER_REFERENCE, "c", domain=DOMAIN, keys=KEYS)
COLLEAGUE = "bob@shop.test"  # the merchant's colleague who wrote (the author's own From)
STAFF_ONLY = "STAFF-ONLY-DIAGNOSTIC"  # what staff notices say and parties must never read
# Addresses the customer must never read (its own real address included: never needed).
NEVER_TO_CUSTOMER = (CUSTOMER, MERCHANT, COLLEAGUE, *STAFF, MERCHANT_CASE, STAFF_CASE, OTHER_CASE)
ACTIVE_CONTENT = ("<script", "javascript:", "onerror", "onload", "<iframe", "<foreignobject", "alert(")


@dataclass(frozen=True)
class Vector:
    id: str
    family: str
    attack: str
    raw: bytes
    author: str = "m"  # who sends it: "m" merchant (relayed to the customer) or "s" staff
    expect: tuple[str, ...] = ()  # must be in the reader view (it still works, via the case address)
    absent: tuple[str, ...] = ()  # must not be in the reader view, besides NEVER_TO_CUSTOMER
    inert: tuple[str, ...] = ()  # must not be in any part a client could render (anything but text/plain)
    removed: bool = False  # the relay must name it in the removal notice


# --- building raw messages -----------------------------------------------------------------
TOP = (f"From: Shop One <{COLLEAGUE}>\r\nTo: Carol via Disputes <{MERCHANT_CASE}>\r\n"
       "Subject: Re: your parcel\r\nDate: Thu, 26 Nov 2026 10:00:00 +0100\r\nMessage-ID: <a1@shop.test>\r\n"
       "MIME-Version: 1.0\r\n")


def part(headers: str, body: str) -> str:
    return headers.rstrip("\r\n") + "\r\n\r\n" + body


def multipart(subtype: str, *parts: str, boundary: str = "b1", preamble: str = "", epilogue: str = "",
              headers: str = "") -> str:
    inner = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts)
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n{headers}'
    return head + "\r\n" + (preamble + "\r\n" if preamble else "") + inner + f"--{boundary}--\r\n" + epilogue


def message(body: str, top: str = TOP) -> bytes:
    return (top + body).encode("utf-8")


def text(body: str = "Hello, here is our answer.") -> str:
    return part("Content-Type: text/plain; charset=utf-8", body)


def html(body: str, ctype: str = "text/html; charset=utf-8") -> str:
    return part(f"Content-Type: {ctype}", body)


def b64(data: bytes) -> str:
    return base64.encodebytes(data).decode().replace("\n", "\r\n")


def attachment(ctype: str, name: str, data: bytes, extra: str = "") -> str:
    return part(f'Content-Type: {ctype}; name="{name}"\r\nContent-Disposition: attachment; filename="{name}"\r\n'
                f"Content-Transfer-Encoding: base64\r\n{extra}", b64(data))


def with_text(*parts: str) -> bytes:
    return message(multipart("mixed", text(), *parts))


def forwarded(inner: str, ctype: str = "message/rfc822", extra: str = "") -> str:
    return part(f"Content-Type: {ctype}\r\nContent-Disposition: attachment\r\n{extra}", inner)


INNER = (f"Return-Path: <{CUSTOMER}>\r\nReceived: from mx.customer.test by mx.shop.test for <{MERCHANT}>\r\n"
         f"From: Carol Client <{CUSTOMER}>\r\nTo: Shop One <{MERCHANT}>\r\nCc: {STAFF[0]}\r\n"
         f"Reply-To: {CUSTOMER}\r\nSender: {CUSTOMER}\r\nX-Original-To: {MERCHANT}\r\n"
         f"DKIM-Signature: v=1; d=customer.test; i={CUSTOMER}; b=abc\r\nMessage-ID: <{CUSTOMER}>\r\n"
         "Subject: My order\r\nDate: Mon, 23 Nov 2026 09:00:00 +0100\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n\r\n"
         f"Hello, it is Carol ({CUSTOMER}). Please answer to {CUSTOMER}.\r\n")

CALENDAR = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Shop//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
            "UID:pickup-1@shop.test\r\nDTSTART:20261201T100000Z\r\nDTEND:20261201T103000Z\r\nSUMMARY:Parcel pickup\r\n"
            "{lines}END:VEVENT\r\nEND:VCALENDAR\r\n")


def calendar(lines: str) -> str:
    return CALENDAR.format(lines=lines)


def vcard(lines: str, version: str = "3.0") -> str:
    return f"BEGIN:VCARD\r\nVERSION:{version}\r\nFN:Shop One\r\n{lines}END:VCARD\r\n"


STAFF_TOP = (f"From: Staff <{STAFF[0]}>\r\nTo: {STAFF_CASE}\r\nSubject: Re: case\r\n"
             "Date: Thu, 26 Nov 2026 10:00:00 +0100\r\nMessage-ID: <s1@ops.test>\r\nMIME-Version: 1.0\r\n")
STAFF_NEW_TEXT = "Please both confirm the delivery address."
QUOTED_NOTICE = (f"{STAFF_NEW_TEXT}\r\n\r\nOn Thu, Disputes <{STAFF_CASE}> wrote:\r\n> {STAFF_ONLY}: 550 5.1.1 "
                 f"<{MERCHANT}> unknown; customer {CUSTOMER}; staff {STAFF[1]}\r\n")
OUR_NOTICE = (f"From: Disputes <{STAFF_CASE}>\r\nTo: {STAFF[0]}\r\nSubject: [Case K3Q7AB2C] held message\r\n"
              f"X-Dispute-Gateway-Loop: <k3q7ab2c.1@{DOMAIN}> 0123456789abcdef01234567\r\n"
              "Content-Type: text/plain\r\n\r\n"
              f"{STAFF_ONLY}: a message from attacker@evil.test was held (sender {MERCHANT}).\r\n")


def staff(body: str) -> bytes:
    return message(body, top=STAFF_TOP)


# --- the vectors ---------------------------------------------------------------------------
_OWN = (CUSTOMER_CASE,)
TUNED: tuple[Vector, ...] = (
    # A: our case addresses quoted in a reply
    Vector("A1", "quoted case address", "plain-text attribution quoting the merchant's own case address",
           message(text(f"We refunded you.\r\n\r\nOn Tue, Carol (customer) via Disputes <{MERCHANT_CASE}> wrote:\r\n"
                        "> Where is my parcel?\r\n")), expect=_OWN),
    Vector("A2", "quoted case address", "HTML attribution with a mailto: link to the merchant's case address",
           message(multipart("alternative", text(), html(
               f'<p>Refunded.</p><div>On Tue, <a href="mailto:{MERCHANT_CASE}">{MERCHANT_CASE}</a> wrote:</div>'
               "<blockquote>Where is my parcel?</blockquote>"))), expect=(f"mailto:{CUSTOMER_CASE}",)),
    Vector("A3", "quoted case address", "Outlook header block quoting the staff case address",
           message(text(f"Done.\r\n\r\n-----Original Message-----\r\nFrom: Disputes (staff) <{STAFF_CASE}>\r\n"
                        f"Sent: Tuesday\r\nTo: {MERCHANT_CASE}\r\nSubject: case\r\n")), expect=_OWN),
    Vector("A4", "quoted case address", "a case address of another case pasted into the reply",
           message(text(f"Your neighbour's case: {OTHER_CASE}\r\n"))),
    Vector("A5", "quoted case address", "the merchant's case address in upper case",
           message(text(f"Reply to {MERCHANT_CASE.upper()}\r\n")), expect=_OWN),
    # B: addresses written so that a plain search misses them
    Vector("B1", "encoded address in the body", "decimal character reference: support&#64;shop.test in HTML",
           message(html("<p>Write to support&#64;shop.test</p>"))),
    Vector("B2", "encoded address in the body", "hexadecimal character reference: support&#x40;shop.test",
           message(html("<p>Write to support&#x40;shop.test or carol&#X40;customer.test</p>"))),
    Vector("B3", "encoded address in the body", "percent-encoded mailto: link (mailto:support%40shop.test)",
           message(html('<p><a href="mailto:support%40shop.test">write to us</a></p>')), expect=_OWN),
    Vector("B4", "encoded address in the body", "address split by inline tags",
           message(html("<p>supp<span></span>ort@<b>shop</b>.test and carol<wbr>@customer.test</p>"))),
    Vector("B5", "encoded address in the body", "quoted-printable soft line break inside the address",
           message(part("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable",
                        "Write to supp=\r\nort@shop.te=\r\nst please\r\n"))),
    Vector("B6", "encoded address in the body", "soft line break and =40 inside an HTML address",
           message(part("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable",
                        "<p>Write to support=40sh=\r\nop.test</p>\r\n"))),
    Vector("B7", "encoded address in the body", "zero-width space and soft hyphen inside the address",
           message(text("Write to sup\u200bport@shop\u00ad.test"))),
    Vector("B8", "encoded address in the body", "full-width letters and at sign",
           message(text("Write to \uff53\uff55\uff50\uff50\uff4f\uff52\uff54\uff20\uff53\uff48\uff4f\uff50\uff0e"
                        "\uff54\uff45\uff53\uff54"))),
    Vector("B9", "encoded address in the body", "named character reference &commat;",
           message(html("<p>support&commat;shop.test</p>"))),
    Vector("B10", "encoded address in the body", "address in image alt and title attributes",
           message(html(f'<p><img src="cid:x" alt="{MERCHANT}" title="carol&#64;customer.test"></p>'))),
    Vector("B11", "encoded address in the body", "base64 text body",
           message(part("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64",
                        b64(f"Our address: {MERCHANT}".encode())))),
    Vector("B12", "encoded address in the body", "mailto: link with percent-encoded letters",
           message(html('<p><a href="mailto:%73%75%70%70%6f%72%74%40shop.test">us</a></p>')), expect=_OWN),
    Vector("B13", "encoded address in the body", "tracking link carrying the customer's address in its query",
           message(html('<p><a href="https://track.shop.test/o?e=carol%40customer.test">track</a></p>'))),
    # C: headers inside MIME parts
    Vector("C1", "headers inside MIME parts", "X-Original-From and Reply-To on an inner part",
           message(multipart("mixed", part(f"Content-Type: text/plain\r\nX-Original-From: {MERCHANT}\r\n"
                                            f"Reply-To: {MERCHANT}", "Hello")))),
    Vector("C2", "headers inside MIME parts", "Content-Description naming the sender",
           with_text(attachment("application/pdf", "invoice.pdf", b"%PDF-1.4",
                                f"Content-Description: invoice from {MERCHANT}\r\n"))),
    Vector("C3", "headers inside MIME parts", "Content-ID that is the merchant's address, referenced by cid:",
           message(multipart("related", html(f'<p><img src="cid:{MERCHANT}"></p>'),
                             part(f"Content-Type: image/png\r\nContent-ID: <{MERCHANT}>\r\n"
                                  "Content-Transfer-Encoding: base64", b64(b"\x89PNG\r\n\x1a\n"))))),
    Vector("C4", "headers inside MIME parts", "Content-Location URL carrying an address",
           with_text(part("Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
                          f"Content-Location: https://cdn.shop.test/{MERCHANT}/logo.png", b64(b"\x89PNG\r\n\x1a\n")))),
    Vector("C5", "headers inside MIME parts", "an unknown Content-Type parameter carrying an address",
           with_text(part(f'Content-Type: application/pdf; x-mac-creator="{MERCHANT}"\r\n'
                          "Content-Transfer-Encoding: base64", b64(b"%PDF-1.4")))),
    Vector("C6", "headers inside MIME parts", "RFC 2047 encoded Content-Description",
           with_text(attachment("application/pdf", "a.pdf", b"%PDF",
                                "Content-Description: =?utf-8?b?"
                                + base64.b64encode(f"from {MERCHANT}".encode()).decode() + "?=\r\n"))),
    Vector("C7", "headers inside MIME parts", "a multipart boundary made of the address",
           message(multipart("mixed", text(), boundary=f"={MERCHANT}="))),
    Vector("C8", "headers inside MIME parts", "multipart preamble naming the sender",
           message(multipart("mixed", text(), preamble=f"Sent by {MERCHANT} from Shop's mail server"))),
    Vector("C9", "headers inside MIME parts", "multipart epilogue naming the sender",
           message(multipart("mixed", text(), epilogue=f"{MERCHANT}\r\n"))),
    Vector("C10", "headers inside MIME parts", "Content-Disposition parameter other than filename",
           with_text(part(f'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="a.pdf"; '
                          f'x-owner="{MERCHANT}"\r\nContent-Transfer-Encoding: base64', b64(b"%PDF")))),
    # D: attachment file names
    Vector("D1", "attachment file names", "the address as the file name",
           with_text(attachment("application/pdf", f"{MERCHANT}.pdf", b"%PDF-1.4"))),
    Vector("D2", "attachment file names", "RFC 2231 encoded file name with %40",
           with_text(part("Content-Type: application/pdf\r\nContent-Disposition: attachment; "
                          "filename*=utf-8''carol%40customer.test%20receipt.pdf\r\n"
                          "Content-Transfer-Encoding: base64", b64(b"%PDF")))),
    Vector("D3", "attachment file names", "RFC 2047 encoded name= on the Content-Type",
           with_text(part('Content-Type: image/jpeg; name="=?utf-8?b?'
                          + base64.b64encode(f"{MERCHANT} label.jpg".encode()).decode() + '?="\r\n'
                          "Content-Transfer-Encoding: base64", b64(b"\xff\xd8\xff\xe0")))),
    Vector("D4", "attachment file names", "RFC 2231 continuation splitting the address",
           with_text(part("Content-Type: application/pdf\r\nContent-Disposition: attachment;\r\n"
                          " filename*0=\"support@sh\";\r\n filename*1=\"op.test.pdf\"\r\n"
                          "Content-Transfer-Encoding: base64", b64(b"%PDF")))),
    Vector("D5", "attachment file names", "an executable named after the address (listed in the removal notice)",
           with_text(attachment("application/octet-stream", f"{MERCHANT}.exe", b"MZ\x90\x00rest")), removed=True),
    # E: text attachments and reports
    Vector("E1", "text attachments", "text/plain attachment quoting the customer",
           with_text(attachment("text/plain; charset=utf-8", "notes.txt", f"customer: {CUSTOMER}\n".encode()))),
    Vector("E2", "text attachments", "CSV export in windows-1252 with addresses",
           with_text(attachment("text/csv; charset=windows-1252", "orders.csv",
                                f"order;email;name\n4471;{CUSTOMER};Zoé\n".encode("cp1252"))),
           expect=("zoé",)),
    Vector("E3", "text attachments", "JSON attachment",
           with_text(attachment("application/json", "order.json", f'{{"email": "{CUSTOMER}"}}'.encode()))),
    Vector("E4", "text attachments", "a .csv sent as application/vnd.ms-excel, as Outlook labels it",
           with_text(attachment("application/vnd.ms-excel", "export.csv", f"{MERCHANT},1\n".encode()))),
    Vector("E5", "text attachments", "text/rfc822-headers of a returned message",
           message(multipart("report", text("Delivery report"), part(
               "Content-Type: text/rfc822-headers", f"From: {MERCHANT}\r\nTo: {CUSTOMER}\r\n"),
               headers="Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n"))),
    Vector("E6", "text attachments", "message/delivery-status naming the failed recipient",
           message(multipart("report", text("Delivery report"), part(
               "Content-Type: message/delivery-status", f"Reporting-MTA: dns; mx.shop.test\r\n\r\n"
               f"Final-Recipient: rfc822; {CUSTOMER}\r\nAction: failed\r\nStatus: 5.1.1\r\n")))),
    # F: calendar invitations
    Vector("F1", "calendar", "ORGANIZER mailto: the merchant's real address",
           message(multipart("alternative", text(), part("Content-Type: text/calendar; method=REQUEST; charset=utf-8",
                                                         calendar(f"ORGANIZER;CN=Shop One:mailto:{MERCHANT}\r\n")))),
           expect=(f"mailto:{CUSTOMER_CASE}",)),
    Vector("F2", "calendar", "ATTENDEE folded across lines",
           message(multipart("mixed", text(), part("Content-Type: text/calendar; method=REQUEST",
                                                   calendar(f"ATTENDEE;RSVP=TRUE:mailto:{CUSTOMER[:6]}\r\n "
                                                            f"{CUSTOMER[6:]}\r\n"))))),
    Vector("F3", "calendar", "CN and SENT-BY parameters naming addresses",
           message(multipart("mixed", text(), part("Content-Type: text/calendar", calendar(
               f'ORGANIZER;CN="{MERCHANT}";SENT-BY="mailto:{COLLEAGUE}":mailto:{MERCHANT}\r\n'))))),
    Vector("F4", "calendar", "DESCRIPTION with the address",
           message(multipart("mixed", text(), part("Content-Type: text/calendar", calendar(
               f"DESCRIPTION:Questions? Write to {MERCHANT}\\, we answer fast.\r\n"))))),
    Vector("F5", "calendar", "an .ics file sent as application/octet-stream",
           with_text(attachment("application/octet-stream", "invite.ics",
                                calendar(f"ORGANIZER:mailto:{MERCHANT}\r\n").encode()))),
    Vector("F6", "calendar", "base64 text/calendar part",
           message(multipart("mixed", text(), part("Content-Type: text/calendar\r\nContent-Transfer-Encoding: base64",
                                                   b64(calendar(f"ORGANIZER:mailto:{MERCHANT}\r\n").encode()))))),
    Vector("F7", "calendar", "Outlook's HTML description (X-ALT-DESC) with &#64;",
           message(multipart("mixed", text(), part("Content-Type: text/calendar", calendar(
               "X-ALT-DESC;FMTTYPE=text/html:<html><body><p>support&#64;shop.test</p></body></html>\r\n"))))),
    # G: contact cards
    Vector("G1", "vCard", "EMAIL of the merchant's card", with_text(attachment(
        "text/vcard", "shop.vcf", vcard(f"EMAIL;TYPE=work:{MERCHANT}\r\n").encode())), expect=_OWN),
    Vector("G2", "vCard", "vCard 2.1 quoted-printable EMAIL with a soft break", with_text(attachment(
        "text/x-vcard", "shop.vcf", vcard("EMAIL;INTERNET;ENCODING=QUOTED-PRINTABLE:support=40sh=\r\nop.test\r\n",
                                          version="2.1").encode()))),
    Vector("G3", "vCard", "Apple's grouped item1.EMAIL as application/octet-stream .vcf", with_text(attachment(
        "application/octet-stream", "Shop One.vcf", vcard(f"item1.EMAIL;type=INTERNET:{MERCHANT}\r\n"
                                                          "item1.X-ABLabel:work\r\n").encode()))),
    Vector("G4", "vCard", "NOTE and base64 NOTE with addresses", with_text(attachment(
        "text/vcard", "shop.vcf", vcard(f"NOTE:ask {COLLEAGUE}\r\nX-NOTE;ENCODING=b:"
                                        + base64.b64encode(f"or {STAFF[0]}".encode()).decode() + "\r\n").encode()))),
    # H: forwarded messages
    Vector("H1", "forwarded message", "From, To and Cc of a forwarded message/rfc822",
           with_text(forwarded(INNER)), expect=_OWN),
    Vector("H2", "forwarded message", "trace headers of a forwarded message (Received, Return-Path, DKIM)",
           with_text(forwarded(INNER)), absent=("mx.customer.test", "d=customer.test")),
    Vector("H3", "forwarded message", "base64 HTML body of a forwarded message with an entity",
           with_text(forwarded(f"From: {CUSTOMER}\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
                               "Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                               + b64(b"<p>carol&#64;customer.test</p><script>alert(1)</script>")))),
    Vector("H4", "forwarded message", "a forwarded .eml sent as application/octet-stream",
           with_text(attachment("application/octet-stream", "original.eml", INNER.encode()))),
    Vector("H5", "forwarded message", "a forward inside a forward",
           with_text(forwarded(f"From: {MERCHANT}\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
                               + multipart("mixed", text("see below"), forwarded(INNER))))),
    Vector("H6", "forwarded message", "an encoded-word display name made of the address",
           with_text(forwarded("From: =?utf-8?q?carol=40customer=2Etest?= <x@other.test>\r\nSubject: "
                               f"about {CUSTOMER}\r\nContent-Type: text/plain\r\n\r\nhi\r\n"))),
    Vector("H7", "forwarded message", "message/global (UTF-8 headers) forward",
           with_text(forwarded(f"From: Zoé <{CUSTOMER}>\r\nSubject: colis\r\n\r\nmerci {CUSTOMER}\r\n",
                               ctype="message/global"))),
    # T: TNEF
    Vector("T1", "TNEF", "winmail.dat whose body, subject and a file name carry addresses",
           with_text(attachment("application/ms-tnef", "winmail.dat", winmail(
               sender=MERCHANT, subject="Re: parcel", body=f"Write to {MERCHANT}",
               files=[(f"{MERCHANT}-label.txt", f"label for {CUSTOMER}".encode()), ("photo.jpg", b"\xff\xd8\xff")]))),
           expect=("label.txt", "photo.jpg"), removed=True),
    Vector("T2", "TNEF", "winmail.dat sent as application/octet-stream, the only body",
           message(attachment("application/octet-stream", "winmail.dat", winmail(
               sender=MERCHANT, subject="x", body=f"Refund done, {MERCHANT}", files=[]))),
           expect=("refund done",), removed=True),
    Vector("T3", "TNEF", "a truncated winmail.dat nobody can read", with_text(attachment(
        "application/vnd.ms-tnef", "winmail.dat", winmail(sender=MERCHANT, subject="x", body=MERCHANT, files=[])[:20]
        + MERCHANT.encode())), removed=True),
    # S: staff replies carry only their new text
    Vector("S1", "staff reply", "body part carrying a file name (text/plain; name=body.txt)",
           staff(part('Content-Type: text/plain; charset=utf-8; name="body.txt"', QUOTED_NOTICE)),
           author="s", expect=(STAFF_NEW_TEXT.lower(),), absent=(STAFF_ONLY.lower(),)),
    Vector("S2", "staff reply", "body in nested multiparts (mixed > alternative > related), HTML quoting the notice",
           staff(multipart("mixed", multipart("alternative", text(QUOTED_NOTICE), multipart(
               "related", html(f"<p>{STAFF_NEW_TEXT}</p><blockquote>{STAFF_ONLY} {CUSTOMER}</blockquote>"),
               part("Content-Type: image/png\r\nContent-ID: <logo>\r\nContent-Transfer-Encoding: base64",
                    b64(b"\x89PNG")), boundary="b3"), boundary="b2"))),
           author="s", expect=(STAFF_NEW_TEXT.lower(),), absent=(STAFF_ONLY.lower(),)),
    Vector("S3", "staff reply", "the staff notice forwarded as message/rfc822",
           staff(multipart("mixed", text(STAFF_NEW_TEXT), forwarded(OUR_NOTICE))),
           author="s", expect=(STAFF_NEW_TEXT.lower(),), absent=(STAFF_ONLY.lower(), "attacker@evil.test")),
    Vector("S4", "staff reply", "body part with Content-Disposition: inline; filename=",
           staff(multipart("mixed", part("Content-Type: text/plain\r\nContent-Disposition: inline; filename=\"m.txt\"",
                                         QUOTED_NOTICE))),
           author="s", expect=(STAFF_NEW_TEXT.lower(),), absent=(STAFF_ONLY.lower(),)),
    Vector("S5", "staff reply", "HTML-only reply labelled text/html with a comment",
           staff(html(f"<p>{STAFF_NEW_TEXT}</p><blockquote>{STAFF_ONLY} {MERCHANT}</blockquote>",
                      ctype="text/html (sent by Outlook); charset=utf-8")),
           author="s", expect=(STAFF_NEW_TEXT.lower(),), absent=(STAFF_ONLY.lower(),)),
    # X: the sanitiser sidestepped by MIME labels (point 4)
    *(Vector(f"X{number}", "sanitiser bypass", attack, raw, inert=ACTIVE_CONTENT, removed=removed)
      for number, (attack, raw, removed) in enumerate((
          ("Content-Type with a comment: text/html (comment)",
           message(html("<p>Hi</p><script>alert(1)</script><img src=x onerror=alert(2)>",
                        ctype="text/html (generated); charset=utf-8")), False),
          ('a quoted type: "text/html"',
           message(html("<p>Hi</p><script>alert(1)</script>", ctype='"text/html"')), False),
          ("two Content-Type headers, text/plain first",
           message(part("Content-Type: text/plain\r\nContent-Type: text/html", "<script>alert(1)</script>")), False),
          ("two Content-Type headers, text/html first",
           message(part("Content-Type: text/html\r\nContent-Type: text/plain", "<script>alert(1)</script>")), False),
          ("upper case and white space: TEXT / HTML",
           message(html("<p>Hi</p><iframe src=https://evil.test></iframe>", ctype="TEXT / HTML")), False),
          ("application/xhtml+xml body",
           message(html('<html xmlns="http://www.w3.org/1999/xhtml"><body><script>alert(1)</script></body></html>',
                        ctype="application/xhtml+xml")), False),
          ("text/x-amp-html alternative",
           message(multipart("alternative", text(), html('<html amp4email><script async src="https://cdn.ampproject'
                                                         '.org/v0.js"></script></html>', ctype="text/x-amp-html"),
                             html("<p>Hi</p>"))), True),
          ("text/watch-html alternative",
           message(multipart("alternative", text(), html("<b>Hi</b><script>alert(1)</script>",
                                                         ctype="text/watch-html"))), False),
          ("SVG attachment with a script",
           with_text(attachment("image/svg+xml", "logo.svg",
                                b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')), True),
          ("HTML attachment",
           with_text(attachment("text/html", "invoice.html",
                                b"<html><body onload=alert(1)><script>alert(2)</script>Invoice</body></html>")), False),
          ("HTML file sent as application/octet-stream",
           with_text(attachment("application/octet-stream", "invoice.htm",
                                b"<html><script>alert(1)</script>Invoice</html>")), False),
          ("HTML under a generic type with no telling name (sniffed)",
           with_text(attachment("application/octet-stream", "invoice",
                                b"  <!DOCTYPE html><html><script>alert(1)</script></html>")), False),
          ("SVG sent as application/octet-stream",
           with_text(attachment("application/octet-stream", "chart.svg",
                                b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>')), True),
          ("base64 HTML whose Content-Transfer-Encoding has a comment",
           message(part("Content-Type: text/html\r\nContent-Transfer-Encoding: BASE64 (encoded)",
                        b64(b"<p>x</p><script>alert(1)</script>"))), False),
          ("XML attachment in the XHTML namespace",
           with_text(attachment("text/xml", "invoice.xml",
                                b'<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>')), False),
          ("calendar HTML description (X-ALT-DESC) with a script",
           message(multipart("mixed", text(), part("Content-Type: text/calendar", calendar(
               "X-ALT-DESC;FMTTYPE=text/html:<script>alert(1)</script><p>Pickup</p>\r\n")))), False),
          ("a Content-Type the email package cannot read, HTML inside",
           message(html("<script>alert(1)</script><p>x</p>", ctype="text/html;;; charset")), False),
      ), start=1)),
)

# Written after the transform was built, from the same families; run, not tuned on.
HELD_OUT: tuple[Vector, ...] = (
    Vector("HA1", "quoted case address", "the merchant's case address in a span's title attribute",
           message(html(f'<p>Hi <span title="{MERCHANT_CASE}">Carol</span></p>'))),
    Vector("HB1", "encoded address in the body", "MAILTO: link in upper case",
           message(html(f'<p><a href="MAILTO:{MERCHANT.upper()}">us</a></p>')), expect=_OWN),
    Vector("HB2", "encoded address in the body", "an HTML comment inside the address",
           message(html("<p>supp<!-- x -->ort@shop.test</p>"))),
    Vector("HB3", "encoded address in the body", "&shy; entity and &#8203; inside the address",
           message(html("<p>sup&shy;port@sh&#8203;op.test</p>"))),
    Vector("HB4", "encoded address in the body", "text/enriched body",
           message(part("Content-Type: text/enriched", f"<bold>{MERCHANT}</bold>"))),
    Vector("HC1", "headers inside MIME parts", "inline image named after the address, referenced by cid:",
           message(multipart("related", html('<p><img src="cid:img1"></p>'),
                             part(f'Content-Type: image/png; name="{MERCHANT}.png"\r\nContent-ID: <img1>\r\n'
                                  "Content-Transfer-Encoding: base64", b64(b"\x89PNG"))))),
    Vector("HF1", "calendar", "DELEGATED-FROM and MEMBER parameters with mailto:",
           message(multipart("mixed", text(), part("Content-Type: text/calendar", calendar(
               f'ATTENDEE;DELEGATED-FROM="mailto:{MERCHANT}";MEMBER="mailto:{STAFF[0]}":mailto:x@other.test\r\n'))))),
    Vector("HF2", "calendar", "vCalendar 1.0 (text/x-vcalendar) organizer",
           message(multipart("mixed", text(), part("Content-Type: text/x-vcalendar",
                                                   f"BEGIN:VCALENDAR\r\nVERSION:1.0\r\nBEGIN:VEVENT\r\n"
                                                   f"ORGANIZER:MAILTO:{MERCHANT}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")))),
    Vector("HG1", "vCard", "IMPP and X-EMAIL properties", with_text(attachment(
        "text/vcard", "c.vcf", vcard(f"IMPP:xmpp:{MERCHANT}\r\nX-EMAIL:{COLLEAGUE}\r\n").encode()))),
    Vector("HH1", "forwarded message", "a forwarded message's folded Cc naming staff",
           with_text(forwarded(f"From: x@other.test\r\nCc: Ops\r\n <{STAFF[1]}>\r\nSubject: y\r\n\r\nbody\r\n"))),
    Vector("HH2", "forwarded message", "a base64-encoded message/rfc822 part",
           with_text(part("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64",
                          b64(INNER.encode())))),
    Vector("HS1", "staff reply", "Apple-style body split around an inline image, the quote in the last text part",
           staff(multipart("mixed", text(STAFF_NEW_TEXT), part(
               'Content-Type: image/png; name="p.png"\r\nContent-Disposition: inline; filename="p.png"\r\n'
               "Content-Transfer-Encoding: base64", b64(b"\x89PNG")), text(QUOTED_NOTICE))),
           author="s", expect=(STAFF_NEW_TEXT.lower(), "p.png"), absent=(STAFF_ONLY.lower(),)),
    *(Vector(f"HX{number}", "sanitiser bypass", attack, raw, inert=ACTIVE_CONTENT, removed=removed)
      for number, (attack, raw, removed) in enumerate((
          ("application/vnd.wap.xhtml+xml body",
           message(html("<p>x</p><script>alert(1)</script>", ctype="application/vnd.wap.xhtml+xml")), False),
          ("two transfer encodings, 7bit first, base64 HTML",
           message(part("Content-Type: text/html\r\nContent-Transfer-Encoding: 7bit\r\n"
                        "Content-Transfer-Encoding: base64", b64(b"<script>alert(1)</script>"))), False),
          ("inline SVG in multipart/related referenced by cid:",
           message(multipart("related", html('<p><img src="cid:s1"></p>'),
                             part("Content-Type: image/svg+xml\r\nContent-ID: <s1>",
                                  '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'))), True),
          ("text/xml body in the XHTML namespace",
           message(html('<html xmlns="http://www.w3.org/1999/xhtml"><body onload="alert(1)">x</body></html>',
                        ctype="text/xml")), False),
          ('HTML attachment named "invoice.HTML. " (Windows drops the trailing dot and space)',
           with_text(attachment("application/pdf", "invoice.HTML. ", b"<script>alert(1)</script>")), False),
      ), start=1)),
)


def all_vectors() -> tuple[Vector, ...]:
    return TUNED + HELD_OUT


# --- the checker ---------------------------------------------------------------------------
def _decode_header(value) -> str:
    text = str(value)
    try:
        return "".join(data.decode(charset or "latin-1", "replace") if isinstance(data, bytes) else data
                       for data, charset in decode_header(text))
    except Exception:
        return text


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return unquote(text).lower()


def reader_view(raw: bytes) -> str:
    """Everything a reader or its client could read in `raw` (see the module docstring)."""
    root = email.message_from_bytes(raw, policy=compat32)
    del root["To"]  # the recipient's own address, where the gateway puts it on purpose
    views: list[str] = [root.as_bytes().decode("latin-1")]
    for node in root.walk():
        for name, value in node.items():
            views.append(f"{name}: {_decode_header(value)}")
        for header in ("content-type", "content-disposition"):
            for _key, value in (node.get_params(header=header) or [])[1:]:
                views.append(_decode_header(collapse_rfc2231_value(value)))
        encoding = str(node.get("Content-Transfer-Encoding", "")).lower()
        if node.is_multipart() and encoding in ("base64", "quoted-printable"):
            holder = Message()  # an encoded message/rfc822, which a lenient client decodes
            holder["Content-Transfer-Encoding"] = encoding
            holder.set_payload("".join(inner.as_string() for inner in node.get_payload()))
            views.append((holder.get_payload(decode=True) or b"").decode("utf-8", "replace"))
        if node.is_multipart():
            views += [node.preamble or "", node.epilogue or ""]
            continue
        payload = node.get_payload()
        if isinstance(payload, list):
            continue
        data = lenient_payload(node)
        decoded = data.decode("utf-8", "replace")
        views += [decoded, data.decode("latin-1"), data.decode("utf-16-le", "replace"),
                  data.decode(node.get_content_charset() or "utf-8", "replace") if _known(node) else "",
                  re.sub(r"\r?\n[ \t]", "", decoded)]  # calendar and vCard lines unfolded
        if "quoted-printable" in decoded.lower():  # vCard 2.1 values
            views.append(quopri.decodestring(re.sub(r"=\r?\n", "", decoded).encode()).decode("utf-8", "replace"))
        if b"<" in data:
            plain = data.decode("utf-8", "replace")
            views.append(htmllib.unescape(re.sub(r"<[^>]*>", "", plain)))
            views.append(htmllib.unescape(plain))
    return _fold("\n".join(views))


def renderable_view(raw: bytes) -> str:
    """The decoded content of every leaf a client could render as something other than
    plain text: all but text/plain parts whose name is no web or image format."""
    root = email.message_from_bytes(raw, policy=compat32)
    views = []
    for node in root.walk():
        if node.is_multipart() or isinstance(node.get_payload(), list):
            continue
        name = (node.get_filename() or "").lower()
        if node.get_content_type() == "text/plain" and not name.endswith((".htm", ".html", ".svg", ".xml", ".xhtml")):
            continue
        views.append(lenient_payload(node).decode("utf-8", "replace"))
    return "\n".join(views).lower()


def lenient_payload(node: Message) -> bytes:
    """A leaf's bytes as a lenient client decodes them: any transfer encoding header that
    mentions base64 or quoted-printable, whatever else it says."""
    encoding = " ".join(str(v) for v in node.get_all("Content-Transfer-Encoding") or []).lower()
    raw = node.get_payload()
    if not isinstance(raw, str):
        return b""
    if "base64" in encoding:
        return base64.b64decode(re.sub(r"[^A-Za-z0-9+/=]", "", raw) + "===", validate=False) if raw else b""
    data = raw.encode("utf-8", "surrogateescape")
    return quopri.decodestring(data) if "quoted-printable" in encoding else data


def _known(node: Message) -> bool:
    try:
        "".encode(node.get_content_charset() or "utf-8")
        return True
    except LookupError:
        return False


def leaks(view: str, addresses: tuple[str, ...] = NEVER_TO_CUSTOMER, own_case: str = CUSTOMER_CASE) -> list[str]:
    """The addresses that can still be read in a reader view: any of `addresses`, and any
    case address but the recipient's own."""
    found = [address for address in addresses if address.lower() in view]
    found += [match for match in re.findall(r"case\+[a-z0-9]+-[cms]-[a-z0-9]+@" + re.escape(DOMAIN), view)
              if match != own_case.lower() and match not in found]
    return found


def by_id(vector_id: str) -> Vector:
    return next(v for v in all_vectors() if v.id == vector_id)
