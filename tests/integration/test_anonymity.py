"""Issue 9, points 3 and 4 over real SMTP: no address crosses from one party to another in
any part of a relay, staff replies carry only their new text whatever their MIME
structure, and HTML is sanitised whatever its label. Messages from the attack corpus
(tests/attack_corpus.py) are sent to a running gateway; what the smarthost sink receives
is read back with the corpus's independent reader view."""

from __future__ import annotations

import base64

from gateway import addresses, reports
from tests.attack_corpus import (
    ACTIVE_CONTENT,
    COLLEAGUE,
    INNER,
    OUR_NOTICE,
    QUOTED_NOTICE,
    STAFF_NEW_TEXT,
    STAFF_ONLY,
    attachment,
    by_id,
    calendar,
    forwarded,
    html,
    leaks,
    message,
    multipart,
    part,
    reader_view,
    renderable_view,
    text,
    vcard,
)
from tests.harness import CUSTOMER, DOMAIN, KEYS, MERCHANT, STAFF, build_mail
from tests.tnef_writer import winmail

FROM_MERCHANT = f"From: Shop One <{MERCHANT}>\r\n"


def _open(gateway, sink) -> str:
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001 missing",
                            body="Where is TX-1001?"), to=f"delivery@{DOMAIN}")
    sink.wait_count(5)
    with gateway.runtime.database.unit_of_work() as db:
        return reports.list_cases(db)[0]["reference"].lower()


def _address(reference: str, party: str) -> str:
    return addresses.case_address(reference, party, domain=DOMAIN, keys=KEYS)


def _as_merchant(raw: bytes) -> bytes:
    """A corpus message sent by the merchant's registered address."""
    return raw.replace(f"From: Shop One <{COLLEAGUE}>\r\n".encode(), FROM_MERCHANT.encode())


def _never_for(recipient_party: str, reference: str) -> tuple[str, ...]:
    others = {"c": (MERCHANT, _address(reference, "m"), _address(reference, "s")),
              "m": (CUSTOMER, _address(reference, "c"), _address(reference, "s"))}[recipient_party]
    return (*others, *STAFF)


def _send_and_receive(gateway, sink, raw: bytes, *, to: str, sender: str, recipient: str):
    before = len(sink.to(recipient))
    gateway.send(raw, to=to, sender=sender)
    gateway.settle()
    received = sink.to(recipient)[before:]
    assert received, f"nothing relayed to {recipient}"
    return received


def test_a_quoted_case_address_becomes_the_recipients_own(gateway, sink):
    """The merchant quotes the attribution its client wrote with the merchant's case address;
    the customer reads her own case address there, and the reverse."""
    reference = _open(gateway, sink)
    merchant_case, customer_case = _address(reference, "m"), _address(reference, "c")
    reply = message(multipart("alternative", text(
        f"We refunded you.\r\n\r\nOn Tue, Carol (customer) via Disputes <{merchant_case}> wrote:\r\n> Where?\r\n"),
        html(f'<p>We refunded you.</p><p>On Tue, <a href="mailto:{merchant_case}">Carol</a> wrote:</p>'
             f"<blockquote>support&#64;shop.test said so</blockquote>")), top=_top(MERCHANT, merchant_case))
    (got,) = _send_and_receive(gateway, sink, reply, to=merchant_case, sender=MERCHANT, recipient=CUSTOMER)
    view = reader_view(got.raw)
    assert leaks(view, _never_for("c", reference), own_case=customer_case) == []
    assert f"<{customer_case}> wrote:" in got.text() and f'href="mailto:{customer_case}"' in got.html()
    answer = message(text(f"Thanks.\r\n\r\nOn Wed, Shop One (merchant) via Disputes <{customer_case}> wrote:\r\n"
                          "> We refunded you.\r\n"), top=_top(CUSTOMER, customer_case))
    (got,) = _send_and_receive(gateway, sink, answer, to=customer_case, sender=CUSTOMER, recipient=MERCHANT)
    assert leaks(reader_view(got.raw), _never_for("m", reference), own_case=merchant_case) == []
    assert f"<{merchant_case}> wrote:" in got.text()


def _top(sender: str, to: str) -> str:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: Re: your parcel\r\nDate: Thu, 26 Nov 2026 10:00:00 +0100\r\n"
            f"Message-ID: <{base64.b32encode(to.encode()).decode()[:20].lower()}@x.test>\r\nMIME-Version: 1.0\r\n")


def test_no_address_crosses_in_any_part(gateway, sink):
    """Calendar, vCard, forwarded message, winmail.dat, inner headers, file names, text
    attachments and HTML entities in one merchant reply."""
    reference = _open(gateway, sink)
    merchant_case, customer_case = _address(reference, "m"), _address(reference, "c")
    raw = message(multipart(
        "mixed",
        multipart("alternative", text(f"Our answer, from {MERCHANT}."),
                  html("<p>Write to support&#64;shop.test or <a href='mailto:support%40shop.test'>here</a></p>"),
                  boundary="alt"),
        part(f"Content-Type: text/calendar; method=REQUEST\r\nX-Sender: {MERCHANT}",
             calendar(f"ORGANIZER;CN=Shop One:mailto:{MERCHANT}\r\nATTENDEE:mailto:{merchant_case}\r\n")),
        attachment("text/vcard", "shop.vcf", vcard(f"EMAIL;TYPE=work:{MERCHANT}\r\n").encode()),
        forwarded(INNER),
        attachment("text/csv", f"{CUSTOMER}.csv", f"order,email\n4471,{CUSTOMER}\n".encode(),
                   f"Content-Description: export for {MERCHANT}\r\n"),
        attachment("application/ms-tnef", "winmail.dat", winmail(
            sender=MERCHANT, subject="Re", body=f"Sent from {MERCHANT}",
            files=[("label.txt", f"label for {CUSTOMER}".encode())])),
    ), top=_top(MERCHANT, merchant_case))
    (got,) = _send_and_receive(gateway, sink, raw, to=merchant_case, sender=MERCHANT, recipient=CUSTOMER)
    view = reader_view(got.raw)
    assert leaks(view, _never_for("c", reference), own_case=customer_case) == []
    assert f"organizer;cn=shop one:mailto:{customer_case}" in view  # the invitation still answers through the case
    assert f"email;type=work:{customer_case}" in view
    assert "label.txt" in view and "application/ms-tnef" not in view and "winmail.dat" in got.text().lower()


def test_a_staff_reply_carries_only_its_new_text_whatever_its_structure(gateway, sink):
    reference = _open(gateway, sink)
    staff_case = _address(reference, "s")
    top = _top(STAFF[0], staff_case)
    for body in (part('Content-Type: text/plain; charset=utf-8; name="body.txt"', QUOTED_NOTICE),
                 multipart("mixed", text(STAFF_NEW_TEXT), forwarded(OUR_NOTICE)),
                 multipart("mixed", part('Content-Type: text/plain\r\nContent-Disposition: inline; filename="m.txt"',
                                         QUOTED_NOTICE))):
        before = len(sink.received)
        gateway.send(message(body, top=top), to=staff_case, sender=STAFF[0])
        got = sink.wait_count(before + 2)[before:]
        assert {r.to for r in got} == {CUSTOMER, MERCHANT}
        for received in got:
            view = reader_view(received.raw)
            own = _address(reference, "c" if received.to == CUSTOMER else "m")
            assert STAFF_NEW_TEXT.lower() in view and STAFF_ONLY.lower() not in view
            assert leaks(view, (*STAFF, CUSTOMER if received.to == MERCHANT else MERCHANT), own_case=own) == []


def test_html_is_sanitised_whatever_its_label(gateway, sink):
    reference = _open(gateway, sink)
    merchant_case = _address(reference, "m")
    for vector_id in ("X1", "X2", "X4", "X6", "X8", "X9", "X10", "X12", "X14", "X15"):
        raw = _as_merchant(by_id(vector_id).raw)
        (got,) = _send_and_receive(gateway, sink, raw, to=merchant_case, sender=MERCHANT, recipient=CUSTOMER)
        rendered = renderable_view(got.raw)
        assert not [active for active in ACTIVE_CONTENT if active in rendered], vector_id
