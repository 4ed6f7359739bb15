"""parse(): headers, addresses, body text and attachments of real and broken mail; never raises."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from gateway.mail.parse import Attachment, ParsedMessage, decode, message_ids, parse

CORPUS = Path(__file__).resolve().parent.parent / "mail" / "corpus"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n" * 7
PNG = bytes(range(256)) * 3


def _mail(text: str | None = "Hello", html: str | None = None, attachments=(), **headers) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = headers.pop("From", "Carol Client <carol@customer.test>")
    message["To"] = headers.pop("To", "disputes@disputes.test")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    for filename, maintype, subtype, data in attachments:
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize("raw_subject, subject", [
    (b"=?utf-8?B?Q29udGVzdGF0aW9uIGTigJl1biBwcsOpbMOodmVtZW50?=", "Contestation d\u2019un pr\u00e9l\u00e8vement"),
    (b"=?iso-8859-1?Q?Caf=E9_Ol=E9?= order 12", "Caf\u00e9 Ol\u00e9 order 12"),
    (b"Re: =?utf-8?q?r=C3=A9sum=C3=A9?=\r\n =?utf-8?q?_du_dossier?=", "Re: r\u00e9sum\u00e9 du dossier"),
    (b"=?UTF-8?Q?=E2=82=AC?= 10 refund", "\u20ac 10 refund"),
    (b"=?windows-1252?Q?Invoice_=96_customer=92s?=", "Invoice \u2013 customer\u2019s"),
    (b"=?utf-8?b?w6k=?= =?utf-8?b?w6k=?=", "\u00e9\u00e9"),  # whitespace between encoded words is dropped
    (b"Plain   subject\r\n  folded", "Plain subject folded"),
    (b"", ""),
])
def test_rfc2047_subjects(raw_subject, subject):
    parsed = parse(b"From: a@b.test\r\nSubject: " + raw_subject + b"\r\n\r\nx\r\n")
    assert parsed.subject == subject


@pytest.mark.parametrize("raw_subject", [
    b"=?utf-8?B?invalid!!?=",
    b"=?x-bogus-charset?Q?abc?=",
    b"=?utf-8?q?broken=ZZ?=",
])
def test_undecodable_encoded_words_do_not_raise(raw_subject):
    parsed = parse(b"From: a@b.test\r\nSubject: " + raw_subject + b"\r\n\r\nx\r\n")
    assert isinstance(parsed.subject, str)


def test_missing_subject_is_empty():
    assert parse(b"From: a@b.test\r\n\r\nx\r\n").subject == ""


@pytest.mark.parametrize("from_header, address, name", [
    ("Carol Client <Carol@Customer.TEST>", "carol@customer.test", "Carol Client"),
    ("carol@customer.test", "carol@customer.test", ""),
    ("\"Client, Carol\" <carol@customer.test>", "carol@customer.test", "Client, Carol"),
    ("=?utf-8?q?Jos=C3=A9_N=C3=BA=C3=B1ez?= <jose@example.test>", "jose@example.test", "Jos\u00e9 N\u00fa\u00f1ez"),
    ("undisclosed-recipients:;", "", ""),
    ("<<<@@@>>>", "", ""),
    ("just a name", "", ""),
])
def test_from_address_and_name(from_header, address, name):
    parsed = parse(f"From: {from_header}\r\nSubject: s\r\n\r\nx\r\n".encode())
    assert parsed.from_address == address
    assert parsed.from_name == name


def test_no_from_header():
    parsed = parse(b"Subject: no sender\r\n\r\nbody\r\n")
    assert parsed.from_address == ""
    assert parsed.from_name == ""
    assert parsed.text.strip() == "body"


def test_to_and_cc_are_lower_case_addresses():
    raw = _mail(To="Disputes <Disputes@Disputes.TEST>, other@x.test", Cc="Ops <ops@OPS.test>, not-an-address")
    parsed = parse(raw)
    assert parsed.to == ("disputes@disputes.test", "other@x.test")
    assert parsed.cc == ("ops@ops.test",)


@pytest.mark.parametrize("headers, message_id, in_reply_to, references", [
    (b"Message-ID: <abc@x.test>\r\n", "<abc@x.test>", (), ()),
    (b"Message-ID:   <abc@x.test>  (comment)\r\n", "<abc@x.test>", (), ()),
    (b"Message-ID:\r\n <folded@x.test>\r\n", "<folded@x.test>", (), ()),
    (b"Message-ID: no-brackets@x.test\r\n", None, (), ()),
    (b"Message-ID: <>\r\n", None, (), ()),
    (b"", None, (), ()),
    (b"Message-ID: <m@x>\r\nIn-Reply-To: <p@x> <q@x>\r\nReferences: <r1@x>\r\n <r2@x>\r\n\t<r3@x>\r\n",
     "<m@x>", ("<p@x>", "<q@x>"), ("<r1@x>", "<r2@x>", "<r3@x>")),
    (b"In-Reply-To: Your message of Monday <p@x>\r\n", None, ("<p@x>",), ()),
])
def test_message_id_extraction(headers, message_id, in_reply_to, references):
    parsed = parse(b"From: a@b.test\r\n" + headers + b"\r\nx\r\n")
    assert parsed.message_id == message_id
    assert parsed.in_reply_to == in_reply_to
    assert parsed.references == references


def test_headers_are_decoded_and_looked_up_case_insensitively():
    parsed = parse(b"From: a@b.test\r\nX-Custom: one\r\nx-custom: two\r\n"
                   b"X-Encoded: =?utf-8?q?caf=C3=A9?=\r\n\r\nx\r\n")
    assert parsed.header("X-CUSTOM") == "one"
    assert parsed.headers["x-custom"] == ("one", "two")
    assert parsed.header("x-encoded") == "caf\u00e9"
    assert parsed.has_header("X-Custom") and not parsed.has_header("X-Missing")
    assert parsed.header("X-Missing") is None


def test_decode_and_message_ids_helpers():
    assert decode(None) == ""
    assert decode("=?utf-8?q?=C3=A9t=C3=A9?=") == "\u00e9t\u00e9"
    assert message_ids(None) == ()
    assert message_ids("<a@x> junk <b@y>") == ("<a@x>", "<b@y>")


# ---------------------------------------------------------------- bodies


def test_plain_text_message():
    parsed = parse(_mail("Hello,\n\nMy parcel never came.\n"))
    assert parsed.content_type == "text/plain"
    assert parsed.text.replace("\r\n", "\n") == "Hello,\n\nMy parcel never came.\n"
    assert parsed.html is None
    assert parsed.attachments == ()


def test_multipart_alternative_takes_the_plain_part_and_keeps_the_html():
    parsed = parse(_mail("Plain version\n", html="<p>HTML <b>version</b></p>"))
    assert parsed.content_type == "multipart/alternative"
    assert parsed.text.strip() == "Plain version"
    assert "<b>version</b>" in parsed.html
    assert parsed.attachments == ()


def test_html_only_message_gets_text_from_the_html():
    html = ("<html><head><style>p {color: red}</style></head><body><p>Hello <b>there</b></p>"
            "<script>alert('#resolved')</script><p>Second</p></body></html>")
    parsed = parse(_mail(None, html=html))
    assert parsed.content_type == "text/html"
    assert parsed.text == "Hello there\n\nSecond"
    assert parsed.new_text == "Hello there\n\nSecond"
    assert parsed.html.strip() == html


def test_new_text_drops_quoted_history():
    parsed = parse(_mail("Thanks!\n\nOn Mon, Jan 8, 2024 at 10:00 AM Shop <support@shop.test> wrote:\n> #resolved\n"))
    assert parsed.new_text == "Thanks!"
    assert "#resolved" in parsed.text


def test_attachments_are_listed_with_filename_type_and_size():
    raw = _mail("See attached.", attachments=[
        ("receipt.pdf", "application", "pdf", PDF),
        ("facture \u00e9t\u00e9.pdf", "application", "pdf", PDF[:100]),
        ("photo.png", "image", "png", PNG),
        ("notes.txt", "text", "plain", b"some notes\n"),
    ])
    parsed = parse(raw)
    assert parsed.content_type == "multipart/mixed"
    assert parsed.text.strip() == "See attached."
    assert parsed.attachments == (
        Attachment("receipt.pdf", "application/pdf", len(PDF)),
        Attachment("facture \u00e9t\u00e9.pdf", "application/pdf", 100),
        Attachment("photo.png", "image/png", len(PNG)),
        Attachment("notes.txt", "text/plain", len(b"some notes\n")),
    )


def test_attachment_without_filename_is_unnamed():
    raw = (b"From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
           b"--B\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
           b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           b"AAECAwQ=\r\n--B--\r\n")
    assert parse(raw).attachments == (Attachment("unnamed", "application/octet-stream", 5),)


@pytest.mark.parametrize("charset_header, body, text", [
    (b"charset=x-unknown-zzz", b"Hello caf\xc3\xa9", "Hello caf\u00e9"),  # unknown charset: read as UTF-8
    (b"charset=iso-8859-1", b"Caf\xe9", "Caf\u00e9"),
    (b"charset=windows-1252", b"\x93quoted\x94", "\u201cquoted\u201d"),
    (b"charset=utf-8", b"bad \xff byte", "bad \ufffd byte"),
    (b"", b"no charset", "no charset"),
])
def test_body_charsets(charset_header, body, text):
    raw = b"From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; " + charset_header + b"\r\n\r\n" + body
    assert parse(raw).text == text


# ---------------------------------------------------------------- real mail


@pytest.mark.parametrize("sample, content_type, subject, from_address, attachments", [
    ("human/fr-gmail-nouvelle-reclamation.eml", "text/plain", "Contestation d\u2019un pr\u00e9l\u00e8vement",
     "lucas.bernard@gmail.example", ()),
    ("human/en-windows-1252-smart-quotes.eml", "text/plain", "Invoice 2024-118 \u2013 customer\u2019s claim",
     "bea@smallbiz.example", ()),
    ("human/en-yahoo-html-only.eml", "text/html", "wrong amount charged", "gracelee77@yahoo.example", ()),
    ("human/fr-html-seulement-webmail.eml", "text/html", "Double d\u00e9bit carte bancaire", "k.benali@sfr.example", ()),
    ("human/en-attachment-pdf-receipt.eml", "multipart/mixed", "Receipt for DSP-2024-0533",
     "chris.doyle@gmail.example", (("receipt-55-1209.pdf", "application/pdf"),)),
    ("human/fr-piece-jointe-facture-pdf.eml", "multipart/mixed", "Facture jointe - DSP-2024-0620",
     "lucas.bernard@gmail.example", (("facture-2024-0917.pdf", "application/pdf"),)),
    ("human/en-attachment-csv-transactions.eml", "multipart/mixed", "Transactions for the disputed period",
     "leo@bookkeeping.example", (("transactions-2024-08.csv", "text/csv"),)),
    ("human/en-html-inline-image-and-attachment.eml", "multipart/mixed", "Proof of collection - R-88121",
     "h.price@retailer.example", (("image001.png", "image/png"), ("collection-slip.pdf", "application/pdf"))),
])
def test_real_mail(eml, sample, content_type, subject, from_address, attachments):
    parsed = parse(eml(f"corpus/{sample}"))
    assert parsed.content_type == content_type
    assert parsed.subject == subject
    assert parsed.from_address == from_address
    assert [(a.filename, a.content_type) for a in parsed.attachments] == list(attachments)
    assert all(a.size > 0 for a in parsed.attachments)
    assert parsed.new_text


@pytest.mark.parametrize("outer", ["text/plain", "text/html"])
def test_attached_message_is_an_attachment_not_the_body(outer):
    raw = (b"From: nadia@gmail.example\r\nSubject: notice\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
           b"--B\r\nContent-Type: " + outer.encode() + b"; charset=utf-8\r\n\r\nSee the courier notice attached.\r\n"
           b"--B\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"notice.eml\"\r\n\r\n"
           b"From: FastParcel <noreply@fastparcel.example>\r\nSubject: We could not deliver your parcel\r\n"
           b"Content-Type: text/plain\r\n\r\n#resolved\r\nWe tried to deliver your parcel today.\r\n--B--\r\n")
    parsed = parse(raw)
    assert parsed.new_text == "See the courier notice attached."
    assert [a.filename for a in parsed.attachments] == ["notice.eml"]


def test_real_mail_with_attached_message(eml):
    parsed = parse(eml("corpus/human/en-attached-courier-notification-rfc822.eml"))
    assert [a.filename for a in parsed.attachments] == ["courier-notice.eml"]


CORPUS_FILES = [
    pytest.param(path, id=f"{path.parent.name}/{path.name}",
                 marks=[])
    for path in sorted(CORPUS.glob("*/*.eml"))
]


@pytest.mark.parametrize("path", CORPUS_FILES)
def test_every_corpus_message_parses(path):
    parsed = parse(path.read_bytes())
    assert isinstance(parsed, ParsedMessage)
    assert isinstance(parsed.subject, str) and isinstance(parsed.text, str)
    assert parsed.from_address == "" or "@" in parsed.from_address


# ---------------------------------------------------------------- broken mail: never raises

BROKEN = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\x00\xff\xfe garbage \r\n\r\n\r\n", id="binary-garbage"),
    pytest.param(b"From: a@b.test\r\nSubject: hi", id="headers-only-no-newline"),
    pytest.param(b"From: a@b.test\r\nContent-Type: multipart/mixed\r\n\r\n--xyz\r\nContent-Type: text/plain\r\n\r\n"
                 b"hi\r\n--xyz--\r\n", id="missing-boundary"),
    pytest.param(b"From: a@b.test\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n"
                 b"Content-Type: text/plain\r\n\r\nhello there\r\n--b1\r\nContent-Type: application/pdf; name=x.pdf\r\n"
                 b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0x", id="truncated"),
    pytest.param(b"From: a@b.test\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
                 b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nin\r\n",
                 id="truncated-nested"),
    pytest.param(b"From: a@b.test\r\nContent-Type: ;;;==\r\n\r\nx", id="garbage-content-type"),
    pytest.param(b"From: a@b.test\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not==base64",
                 id="bad-base64"),
    pytest.param(b"From: a@b.test\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=",
                 id="bad-quoted-printable"),
    pytest.param(b"From: a@b.test\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\n"
                 b"body\r\n--a\r\nContent-Type: application/pdf\r\n"
                 b"Content-Disposition: attachment; filename*=bogus-cs''x%FF.pdf\r\n\r\nxx\r\n--a--\r\n",
                 id="bad-rfc2231-filename"),
    pytest.param(b"From: a@b.test\r\nContent-Type: text/plain; charset=\"\"\r\n\r\nx", id="empty-charset"),
    pytest.param(b"From: a@b.test\r\nContent-Type: message/rfc822\r\n\r\nnot a message", id="bare-message-rfc822"),
    pytest.param(b"no header at all, just text\r\nsecond line\r\n", id="no-headers"),
    pytest.param(b"From: a@b.test\r\n" + b"X-Long: " + b"x" * 100_000 + b"\r\n\r\nbody", id="huge-header"),
]


@pytest.mark.parametrize("raw", BROKEN)
def test_broken_mail_never_raises(raw):
    parsed = parse(raw)
    assert isinstance(parsed, ParsedMessage)
    assert isinstance(parsed.text, str) and isinstance(parsed.new_text, str)


def test_missing_boundary_is_noted_as_a_defect():
    parsed = parse(b"From: a@b.test\r\nContent-Type: multipart/mixed\r\n\r\n--xyz\r\nContent-Type: text/plain\r\n\r\n"
                   b"hi\r\n--xyz--\r\n")
    assert "NoBoundaryInMultipartDefect" in parsed.defects
    assert parsed.from_address == "a@b.test"


def test_truncated_mail_keeps_what_arrived():
    parsed = parse(b"From: a@b.test\r\nSubject: cut\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n"
                   b"Content-Type: text/plain\r\n\r\nhello there\r\n--b1\r\n"
                   b"Content-Type: application/pdf; name=x.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x")
    assert parsed.subject == "cut"
    assert parsed.text == "hello there"
    assert [a.filename for a in parsed.attachments] == ["x.pdf"]
    assert parsed.defects


def test_very_long_body_text_is_bounded():
    parsed = parse(b"From: a@b.test\r\n\r\n" + b"a" * 300_000)
    assert 0 < len(parsed.text) <= 200_000


# Raw 8-bit header values (RFC 6532 UTF-8 headers, or just sloppy clients) come back from the
# compat32 parser as email.header.Header objects, not str.
RAW_UTF8 = [
    pytest.param("From: Jos\u00e9 <jose@example.test>\r\nSubject: s\r\n\r\nbody".encode(), id="from"),
    pytest.param("From: jose@example.test\r\nMessage-ID: <caf\u00e9@example.test>\r\n\r\nbody".encode(), id="message-id"),
    pytest.param("From: jose@example.test\r\nIn-Reply-To: <caf\u00e9@example.test>\r\n\r\nbody".encode(),
                 id="in-reply-to"),
]


@pytest.mark.parametrize("raw", RAW_UTF8)
def test_raw_utf8_headers_do_not_raise(raw):
    assert isinstance(parse(raw), ParsedMessage)


@pytest.mark.parametrize("name, value", [("Subject", "Caf\u00e9 ol\u00e9"), ("Date", "lun. 8 janv. 2024 \u00e0 10:00")])
def test_raw_utf8_subject_and_date_are_text(name, value):
    parsed = parse(f"From: jose@example.test\r\n{name}: {value}\r\n\r\nbody".encode())
    got = parsed.subject if name == "Subject" else parsed.date
    assert got == value


@pytest.mark.parametrize("header, address", [
    ("From: carol@customer.test <carol@customer.test>", "carol@customer.test"),
    ("From: Carol <carol@customer.test> via LinkedIn", "carol@customer.test"),
    ('From: "Doe, Carol (carol@old.test)" <carol@customer.test>', "carol@customer.test"),
    ("From: a@x.test, b@y.test", ""),  # several authors: nobody in particular
    ("From: =?utf-8?q?carol=40customer.test?= <x@evil.test>", "x@evil.test"),
])
def test_from_is_read_from_the_raw_header(header, address):
    parsed = parse(f"{header}\r\nSubject: s\r\n\r\nbody".encode())
    assert parsed.from_address == address


@pytest.mark.parametrize("part_headers", [
    'Content-Type: text/plain; name="body.txt"',  # some webmails name the body
    'Content-Type: text/plain\r\nContent-Disposition: inline; filename="m.txt"',
    "Content-Type: text/plain (sent by Outlook)",
])
def test_a_text_part_not_marked_as_an_attachment_is_the_body(part_headers):
    """Read as the relay reads it, so a staff reply's commands and new text are not lost."""
    raw = (f"From: staff@ops.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n{part_headers}\r\n\r\n"
           "#to customer\r\nPlease confirm.\r\n").encode()
    parsed = parse(raw)
    assert parsed.text.startswith("#to customer") and parsed.attachments == ()


def test_an_html_body_whose_type_has_a_comment_is_read_as_html():
    raw = (b"From: a@b.test\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/html (generated); charset=utf-8"
           b"\r\n\r\n<p>Hello there</p>")
    assert parse(raw).text.strip() == "Hello there"
